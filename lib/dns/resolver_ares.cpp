// resolver_ares.cpp: the `ares` resolver — glibc's conventions on top of
// the c-ares lookups of ares_channel.hpp: which inputs never touch the
// network (left to libc itself), the layout of the results
// (glibc_layout.hpp), canonical names and aliases, and the error codes.
#include "dns/ares_channel.hpp"
#include "dns/glibc_layout.hpp"
#include "dns/resolver.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <ares.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

namespace moss::detail::dns {
namespace {

bool temporary(int status) noexcept {
  switch (status) {
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ENOTIMP:
    case ARES_EBADRESP:
    case ARES_EOF:
    case ARES_EFILE:
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
      return true;
    default:
      return false;
  }
}

// What glibc's getaddrinfo returns for a failed name lookup (measured
// against glibc 2.36 and the same server): NXDOMAIN, a malformed or
// over-long name and FORMERR give EAI_NONAME; a name without addresses of
// the family EAI_NODATA; SERVFAIL, REFUSED, NOTIMP and silence EAI_AGAIN.
int eai_of(int status) noexcept {
  switch (status) {
    case ARES_ENODATA: return EAI_NODATA;
    case ARES_ENOMEM: return EAI_MEMORY;
    case ARES_EBADFAMILY: return EAI_FAMILY;
    default: return temporary(status) ? EAI_AGAIN : EAI_NONAME;
  }
}

// canonical_name() follows the CNAME chain from the name c-ares asked for
// (which includes a search domain it appended); a hosts-file answer names
// the entry's official name in a record without an alias. With aliases,
// the owner names along the chain, as glibc's h_aliases lists them.
std::string canonical_name(const ares_addrinfo& ai, const char* node, std::vector<std::string>* aliases) {
  // c-ares keeps the spelling of the name it was given while the question
  // names in the answers match it but for case; a lookup that read the
  // hosts file first had it set from there, one that did not has the
  // answers' spelling: take the caller's in both.
  std::string cur = ai.name != nullptr && strcasecmp(ai.name, node) != 0 ? ai.name : node;
  bool hopped = false;
  for (int hops = 0; hops < 16; ++hops) {
    const ares_addrinfo_cname* next = nullptr;
    for (const ares_addrinfo_cname* c = ai.cnames; c != nullptr && next == nullptr; c = c->next)
      if (c->alias != nullptr && c->name != nullptr && strcasecmp(c->alias, cur.c_str()) == 0) next = c;
    if (next == nullptr) break;
    if (aliases != nullptr) aliases->push_back(cur);
    cur = next->name;
    hopped = true;
  }
  if (!hopped)
    for (const ares_addrinfo_cname* c = ai.cnames; c != nullptr; c = c->next)
      if (c->alias == nullptr && c->name != nullptr) {
        cur = c->name;
        break;
      }
  return cur;
}

struct found_addr {
  int family;
  std::array<unsigned char, 16> bytes;
};

std::vector<found_addr> addresses(const ares_addrinfo& ai, int family) {
  std::vector<found_addr> out;
  for (const ares_addrinfo_node* n = ai.nodes; n != nullptr; n = n->ai_next) {
    found_addr a{n->ai_family, {}};
    if (n->ai_family == AF_INET) std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr, 4);
    else if (n->ai_family == AF_INET6) std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(n->ai_addr)->sin6_addr, 16);
    else continue;
    if (family == AF_UNSPEC || family == n->ai_family) out.push_back(a);
  }
  return out;
}

// maybe_numeric(): worth asking libc whether it parses node as an address
// (inet_aton's forms start with a digit; IPv6 literals contain a colon).
bool maybe_numeric(const char* node) noexcept {
  return (node[0] >= '0' && node[0] <= '9') || std::strchr(node, ':') != nullptr;
}

struct addrinfo_list {
  addrinfo* head = nullptr;
  ~addrinfo_list() {
    if (head != nullptr) libc::freeaddrinfo(head);
  }
};

// triple: what one address expands to in getaddrinfo's list.
struct triple {
  int socktype;
  int protocol;
  int port_be;
};

// shape_of() asks libc to check the arguments glibc checks before any
// lookup, and for the triples of one address: the entries of the first
// family libc gives for a stand-in host. Without a service, the stand-in is
// a literal address (a numeric stand-in service would drop the SOCK_RAW
// entries glibc gives). For no service or a numeric one the answer depends
// on nothing but the arguments, so it is kept per thread; a named service
// goes to libc each time, as /etc/services may change. A kept shape is
// shared, not copied: the caller holds it across its wait.
using shape_ptr = std::shared_ptr<const std::vector<triple>>;
int shape_of(const char* service, const addrinfo& h, shape_ptr& out) {
  struct key {
    std::string service;
    bool has_service;
    int family, socktype, protocol, flags;
    bool operator==(const key&) const = default;
  };
  struct entry {
    key k;
    int rc;
    shape_ptr shape;
  };
  thread_local std::vector<entry> cache;
  constexpr std::size_t cache_size = 32;

  int flags = (h.ai_flags & ~(AI_CANONNAME | AI_ADDRCONFIG)) | AI_PASSIVE;
  bool cacheable = service == nullptr ||
                   (*service != '\0' && std::all_of(service, service + std::strlen(service), [](char c) { return c >= '0' && c <= '9'; }));
  key k{service != nullptr ? service : "", service != nullptr, h.ai_family, h.ai_socktype, h.ai_protocol, flags};
  if (cacheable)
    for (const entry& e : cache)
      if (e.k == k) {
        out = e.shape;
        return e.rc;
      }

  addrinfo th{};
  th.ai_flags = flags;
  th.ai_family = h.ai_family;
  th.ai_socktype = h.ai_socktype;
  th.ai_protocol = h.ai_protocol;
  addrinfo_list got;
  int rc;
  if (service != nullptr) {
    rc = libc::getaddrinfo(nullptr, service, &th, &got.head);
  } else {
    th.ai_flags |= AI_NUMERICHOST;
    rc = libc::getaddrinfo(h.ai_family == AF_INET6 ? "::" : "0.0.0.0", nullptr, &th, &got.head);
  }
  auto shape = std::make_shared<std::vector<triple>>();
  if (rc == 0) {
    int first = got.head->ai_family;
    for (addrinfo* p = got.head; p != nullptr && p->ai_family == first; p = p->ai_next)
      shape->push_back({p->ai_socktype, p->ai_protocol, reinterpret_cast<const sockaddr_in*>(p->ai_addr)->sin_port});
  }
  out = std::move(shape);
  // EAI_SYSTEM and EAI_MEMORY describe this call, not the arguments.
  if (cacheable && rc != EAI_SYSTEM && rc != EAI_MEMORY) {
    if (cache.size() == cache_size) cache.erase(cache.begin());
    cache.push_back({std::move(k), rc, out});
  }
  return rc;
}

int ares_getaddrinfo_impl(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  // glibc's defaults when hints is null.
  addrinfo defaults{};
  defaults.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;
  defaults.ai_family = AF_UNSPEC;
  const addrinfo& h = hints != nullptr ? *hints : defaults;

  // No host, or only an address: libc answers without any lookup.
  if (node == nullptr || (h.ai_flags & AI_NUMERICHOST) != 0) return libc::getaddrinfo(node, service, hints, res);
  if (maybe_numeric(node)) {
    addrinfo nh = h;
    nh.ai_flags |= AI_NUMERICHOST;
    int rc = libc::getaddrinfo(node, service, &nh, res);
    if (rc != EAI_NONAME) {
      if (rc == 0)
        for (addrinfo* p = *res; p != nullptr; p = p->ai_next) p->ai_flags = h.ai_flags;
      return rc;
    }
  }

  // libc checks flags, family, socket type, protocol and service, and gives
  // the (socket type, protocol, port) triples each address expands to.
  shape_ptr shape;
  int rc = shape_of(service, h, shape);
  if (rc != 0) return rc;

  // AI_ADDRCONFIG: the families this host has addresses of, as libc sees them.
  int family = h.ai_family;
  if ((h.ai_flags & AI_ADDRCONFIG) != 0) {
    addrinfo ah{};
    ah.ai_flags = AI_ADDRCONFIG | AI_PASSIVE | AI_NUMERICSERV;
    ah.ai_family = h.ai_family;
    addrinfo_list configured;
    rc = libc::getaddrinfo(nullptr, "0", &ah, &configured.head);
    if (rc != 0) return rc;
    bool v4 = false, v6 = false;
    for (addrinfo* p = configured.head; p != nullptr; p = p->ai_next) {
      v4 = v4 || p->ai_family == AF_INET;
      v6 = v6 || p->ai_family == AF_INET6;
    }
    if (family == AF_UNSPEC && v4 != v6) family = v4 ? AF_INET : AF_INET6;
  }

  bool v4mapped = family == AF_INET6 && (h.ai_flags & AI_V4MAPPED) != 0;
  int flags = 0;
  if ((h.ai_flags & AI_CANONNAME) != 0) flags |= ARES_AI_CANONNAME;
  // c-ares sorts by RFC 6724 with a socket per address; glibc leaves a
  // lone family's order to DNS too, except for rules that rarely apply.
  if (family == AF_INET) flags |= ARES_AI_NOSORT;
  std::unique_ptr<request> q = lookup_name(node, v4mapped ? AF_UNSPEC : family, flags);
  if (q->status != ARES_SUCCESS || q->ai == nullptr) return eai_of(q->status);

  addrinfo_list out;
  addrinfo** tail = &out.head;
  // emit(): one address's entries, one per triple.
  auto emit = [&](int fam, const unsigned char* bytes) {
    for (const triple& t : *shape) {
      addrinfo* e = addrinfo_entry(fam, bytes, t.socktype, t.protocol, t.port_be, h.ai_flags);
      if (e == nullptr) return false;
      *tail = e;
      tail = &e->ai_next;
    }
    return true;
  };
  if (v4mapped) {
    // IPv6 addresses, and the IPv4 ones as ::ffff:a.b.c.d if there are no
    // IPv6 ones or AI_ALL asks for both; in c-ares' (RFC 6724) order, as
    // glibc sorts the mapped list too.
    std::vector<found_addr> found = addresses(*q->ai, AF_UNSPEC);
    bool any6 = std::any_of(found.begin(), found.end(), [](const found_addr& a) { return a.family == AF_INET6; });
    bool keep4 = !any6 || (h.ai_flags & AI_ALL) != 0;
    std::erase_if(found, [&](const found_addr& a) { return a.family == AF_INET && !keep4; });
    for (found_addr& a : found) {
      if (a.family == AF_INET) {
        std::array<unsigned char, 16> m{};
        m[10] = m[11] = 0xff;
        std::memcpy(m.data() + 12, a.bytes.data(), 4);
        a = {AF_INET6, m};
      }
      if (!emit(a.family, a.bytes.data())) return EAI_MEMORY;
    }
    if (found.empty()) return EAI_NODATA;
  } else {
    // Straight from c-ares' list: no copy of the addresses in between.
    bool any = false;
    for (const ares_addrinfo_node* n = q->ai->nodes; n != nullptr; n = n->ai_next) {
      if (family != AF_UNSPEC && family != n->ai_family) continue;
      const unsigned char* bytes;
      if (n->ai_family == AF_INET) bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr);
      else if (n->ai_family == AF_INET6) bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(n->ai_addr)->sin6_addr);
      else continue;
      any = true;
      if (!emit(n->ai_family, bytes)) return EAI_MEMORY;
    }
    if (!any) return EAI_NODATA;
  }
  if ((h.ai_flags & AI_CANONNAME) != 0 && out.head != nullptr) {
    std::string canon = canonical_name(*q->ai, node, nullptr);
    out.head->ai_canonname = strdup(canon.c_str());  // freed on its own by freeaddrinfo, as glibc's is
    if (out.head->ai_canonname == nullptr) return EAI_MEMORY;
  }
  *res = std::exchange(out.head, nullptr);
  return 0;
}

void no_result(hostent** result, int* h_errnop, int herr) noexcept {
  *result = nullptr;
  *h_errnop = herr;
}

int ares_gethostbyname2_r_impl(const char* name, int af, hostent* ret, char* buf, std::size_t buflen,
                               hostent** result, int* h_errnop) {
  // Other families, and names glibc parses as addresses, never reach the
  // network in glibc either.
  if ((af != AF_INET && af != AF_INET6) || numeric_host_candidate(name))
    return libc::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
  if (*name == '\0') {  // glibc: no recovery possible
    no_result(result, h_errnop, NO_RECOVERY);
    return 0;
  }
  host_entry e;
  if (hosts_entry(name, af, e)) return pack_hostent(e, ret, buf, buflen, result, h_errnop);
  std::unique_ptr<request> q = lookup_name(name, af, ARES_AI_CANONNAME | ARES_AI_NOSORT);
  int st = q->status;
  if (st == ARES_SUCCESS && q->ai != nullptr) {
    e.family = af;
    e.name = canonical_name(*q->ai, name, &e.aliases);
    for (const found_addr& a : addresses(*q->ai, af)) e.addrs.push_back(a.bytes);
    if (!e.addrs.empty()) return pack_hostent(e, ret, buf, buflen, result, h_errnop);
    st = ARES_ENODATA;
  }
  // glibc 2.36 against the same server: these return 0 with h_errno set,
  // except a temporary failure, which returns EAGAIN.
  if (st == ARES_ENOMEM) {
    no_result(result, h_errnop, NETDB_INTERNAL);
    errno = ENOMEM;
    return ENOMEM;
  }
  if (temporary(st)) {
    no_result(result, h_errnop, TRY_AGAIN);
    errno = EAGAIN;
    return EAGAIN;
  }
  no_result(result, h_errnop, st == ARES_ENODATA ? NO_DATA : st == ARES_EFORMERR ? NO_RECOVERY : HOST_NOT_FOUND);
  return 0;
}

// unmap(): glibc looks up an IPv4-mapped IPv6 address as the IPv4 one.
void unmap(const unsigned char*& addr, int& family) noexcept {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && std::memcmp(addr, prefix, sizeof prefix) == 0) {
    addr += 12;
    family = AF_INET;
  }
}

int ares_gethostbyaddr_r_impl(const void* addr, socklen_t len, int type, hostent* ret, char* buf,
                              std::size_t buflen, hostent** result, int* h_errnop) {
  if ((type != AF_INET && type != AF_INET6) || len < addr_size(type)) {
    no_result(result, h_errnop, NETDB_INTERNAL);
    errno = EAFNOSUPPORT;
    return EAFNOSUPPORT;
  }
  const auto* bytes = static_cast<const unsigned char*>(addr);
  if (type == AF_INET6 && std::memcmp(bytes, &in6addr_any, 16) == 0) {  // glibc refuses "::" outright
    no_result(result, h_errnop, HOST_NOT_FOUND);
    return ENOENT;
  }
  unmap(bytes, type);
  std::unique_ptr<request> q = lookup_address(bytes, type);
  if (q->status == ARES_SUCCESS) return pack_hostent(q->host, ret, buf, buflen, result, h_errnop);
  if (q->status == ARES_ENOMEM) {
    no_result(result, h_errnop, NETDB_INTERNAL);
    errno = ENOMEM;
    return ENOMEM;
  }
  // Unlike gethostbyname_r, glibc's gethostbyaddr_r returns 0 even for a
  // temporary failure; h_errno tells.
  no_result(result, h_errnop,
            temporary(q->status) ? TRY_AGAIN : q->status == ARES_ENODATA ? NO_DATA : HOST_NOT_FOUND);
  return 0;
}

constexpr int known_ni_flags = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM | NI_IDN;

int ares_getnameinfo_impl(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                          socklen_t servlen, int flags) {
  bool want_host = host != nullptr && hostlen > 0;
  // Only a host name needs a lookup; everything else is libc's, and so is
  // checking the arguments (flags, family, lengths) the way glibc does.
  if (!want_host || (flags & NI_NUMERICHOST) != 0 || (flags & ~known_ni_flags) != 0 || sa == nullptr ||
      salen < static_cast<socklen_t>(sizeof(sa_family_t)) || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
    return libc::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  int rc = libc::getnameinfo(sa, salen, nullptr, 0, nullptr, 0, flags & ~NI_NAMEREQD);
  if (rc != 0) return rc;

  int family = sa->sa_family;
  const auto* bytes = family == AF_INET
                          ? reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr)
                          : reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
  unmap(bytes, family);
  std::unique_ptr<request> q = lookup_address(bytes, family);
  if (q->status == ARES_SUCCESS) {
    std::string name = q->host.name;
    if ((flags & NI_NOFQDN) != 0) {
      // glibc: cut at the first place the local domain appears after a dot.
      std::string domain = local_domain(ares_resolver());
      std::size_t at = domain.empty() ? std::string::npos : name.find(domain);
      if (at != std::string::npos && at > 0 && name[at - 1] == '.') name.resize(at - 1);
    }
    if (name.size() + 1 > hostlen) return EAI_OVERFLOW;
    std::memcpy(host, name.c_str(), name.size() + 1);
  } else if (q->status == ARES_ENOMEM) {
    return EAI_MEMORY;
  } else if (temporary(q->status)) {
    return EAI_AGAIN;  // glibc: even without NI_NAMEREQD
  } else if ((flags & NI_NAMEREQD) != 0) {
    return EAI_NONAME;
  } else {
    rc = libc::getnameinfo(sa, salen, host, hostlen, nullptr, 0, NI_NUMERICHOST);
    if (rc != 0) return rc;
  }
  if (serv != nullptr && servlen > 0)
    return libc::getnameinfo(sa, salen, nullptr, 0, serv, servlen, flags & (NI_NUMERICSERV | NI_DGRAM));
  return 0;
}

class ares_resolver_impl final : public resolver {
 public:
  int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) override {
    try {
      return ares_getaddrinfo_impl(node, service, hints, res);
    } catch (const std::bad_alloc&) {
      return EAI_MEMORY;
    }
  }
  int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                  socklen_t servlen, int flags) override {
    try {
      return ares_getnameinfo_impl(sa, salen, host, hostlen, serv, servlen, flags);
    } catch (const std::bad_alloc&) {
      return EAI_MEMORY;
    }
  }
  int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                       int* h_errnop) override {
    try {
      return ares_gethostbyname2_r_impl(name, af, ret, buf, buflen, result, h_errnop);
    } catch (const std::bad_alloc&) {
      no_result(result, h_errnop, NETDB_INTERNAL);
      errno = ENOMEM;
      return ENOMEM;
    }
  }
  int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                      hostent** result, int* h_errnop) override {
    try {
      return ares_gethostbyaddr_r_impl(addr, len, type, ret, buf, buflen, result, h_errnop);
    } catch (const std::bad_alloc&) {
      no_result(result, h_errnop, NETDB_INTERNAL);
      errno = ENOMEM;
      return ENOMEM;
    }
  }
};

}  // namespace

resolver& ares_resolver() {
  static ares_resolver_impl r;
  return r;
}

}  // namespace moss::detail::dns
