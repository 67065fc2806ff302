// glibc_layout.cpp: glibc's result layouts and name tests (glibc_layout.hpp).
#include "dns/glibc_layout.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include <netinet/in.h>
#include <unistd.h>

namespace moss::detail::dns {

int pack_hostent(const host_entry& e, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                 int* h_errnop) noexcept {
  std::size_t len = addr_size(e.family);
  // Pointer arrays first (aligned), then addresses, then strings.
  std::size_t pad = (alignof(char*) - reinterpret_cast<std::uintptr_t>(buf) % alignof(char*)) % alignof(char*);
  std::size_t need = pad + (e.aliases.size() + 1 + e.addrs.size() + 1) * sizeof(char*) + e.addrs.size() * len +
                     e.name.size() + 1;
  for (const auto& a : e.aliases) need += a.size() + 1;
  if (need > buflen) {
    *result = nullptr;
    *h_errnop = NETDB_INTERNAL;
    errno = ERANGE;
    return ERANGE;
  }
  auto** aliases = reinterpret_cast<char**>(buf + pad);
  char** addrs = aliases + e.aliases.size() + 1;
  char* p = reinterpret_cast<char*>(addrs + e.addrs.size() + 1);
  for (std::size_t i = 0; i < e.addrs.size(); ++i) {
    std::memcpy(p, e.addrs[i].data(), len);
    addrs[i] = p;
    p += len;
  }
  addrs[e.addrs.size()] = nullptr;
  std::memcpy(p, e.name.c_str(), e.name.size() + 1);
  ret->h_name = p;
  p += e.name.size() + 1;
  for (std::size_t i = 0; i < e.aliases.size(); ++i) {
    std::memcpy(p, e.aliases[i].c_str(), e.aliases[i].size() + 1);
    aliases[i] = p;
    p += e.aliases[i].size() + 1;
  }
  aliases[e.aliases.size()] = nullptr;
  ret->h_aliases = aliases;
  ret->h_addrtype = e.family;
  ret->h_length = static_cast<int>(len);
  ret->h_addr_list = addrs;
  *result = ret;
  *h_errnop = NETDB_SUCCESS;
  return 0;
}

bool numeric_host_candidate(const char* name) noexcept {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  auto xdigit = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  std::size_t n = std::strlen(name);
  if (n == 0 || name[n - 1] == '.') return false;
  if (digit(name[0]) && std::all_of(name, name + n, [&](char c) { return digit(c) || c == '.'; })) return true;
  if ((xdigit(name[0]) && std::strchr(name, ':') != nullptr) || name[0] == ':')
    return std::all_of(name, name + n, [&](char c) { return xdigit(c) || c == ':' || c == '.'; });
  return false;
}

addrinfo* addrinfo_entry(int family, const unsigned char* addr, int socktype, int protocol, int port_be,
                         int flags) noexcept {
  socklen_t salen = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  // Filled field by field rather than zeroed whole: GCC turns malloc plus a
  // memset of the block into calloc, which glibc never serves from its
  // per-thread cache.
  void* block = std::malloc(sizeof(addrinfo) + salen);
  if (block == nullptr) return nullptr;
  auto* ai = new (block) addrinfo{};
  auto* sa = reinterpret_cast<sockaddr*>(ai + 1);
  if (family == AF_INET6) {
    auto* s6 = new (sa) sockaddr_in6{};
    s6->sin6_family = AF_INET6;
    s6->sin6_port = static_cast<in_port_t>(port_be);
    std::memcpy(&s6->sin6_addr, addr, 16);
  } else {
    auto* s4 = new (sa) sockaddr_in{};
    s4->sin_family = AF_INET;
    s4->sin_port = static_cast<in_port_t>(port_be);
    std::memcpy(&s4->sin_addr, addr, 4);
  }
  ai->ai_flags = flags;
  ai->ai_family = family;
  ai->ai_socktype = socktype;
  ai->ai_protocol = protocol;
  ai->ai_addrlen = salen;
  ai->ai_addr = sa;
  return ai;
}

std::string local_domain(resolver& r) {
  static std::mutex mu;
  static bool known = false;
  static std::string domain;
  {
    std::lock_guard lk(mu);
    if (known) return domain;
  }
  // Computed outside the lock: the lookup below may wait, and another
  // greenlet of this thread may get here meanwhile.
  char name[256] = {};
  std::string found;
  if (gethostname(name, sizeof name - 1) == 0) {
    if (const char* dot = std::strchr(name, '.')) {
      found = dot + 1;
    } else {
      hostent ent{};
      hostent* res = nullptr;
      int herr = 0;
      std::vector<char> buf(4096);
      if (r.gethostbyname2_r(name, AF_INET, &ent, buf.data(), buf.size(), &res, &herr) == 0 && res != nullptr)
        if (const char* d = std::strchr(res->h_name, '.')) found = d + 1;
    }
  }
  std::lock_guard lk(mu);
  if (!known) {
    domain = found;
    known = true;
  }
  return domain;
}

}  // namespace moss::detail::dns
