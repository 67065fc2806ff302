// glibc_layout.hpp (internal): results laid out as glibc lays them out, so
// that a caller may free them with glibc's freeaddrinfo or read them as
// glibc's gethostbyname_r fills them; and glibc's tests on names and the
// local domain. Used by the c-ares resolver's glibc conventions
// (lib/dns/resolver_ares.cpp).
#pragma once

#include "dns/resolver.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>

namespace moss::detail::dns {

// host_entry: a hostent's content, owned.
struct host_entry {
  std::string name;
  std::vector<std::string> aliases;
  int family = AF_INET;
  std::vector<std::array<unsigned char, 16>> addrs;  // the first 4 or 16 bytes used
};

inline std::size_t addr_size(int family) noexcept { return family == AF_INET6 ? 16 : 4; }

// pack_hostent() lays e out in the caller's buffer as glibc does and
// returns gethostbyname_r's result: 0 with *result set, or ERANGE (and
// NETDB_INTERNAL) when buf is too small.
int pack_hostent(const host_entry& e, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                 int* h_errnop) noexcept;

// numeric_host_candidate() is glibc's test for names it parses as an
// address without any lookup (digits and dots, or an IPv6 literal).
bool numeric_host_candidate(const char* name) noexcept;

// addrinfo_entry() mallocs one result in glibc's layout — the addrinfo and
// its sockaddr in one block, so that glibc's freeaddrinfo frees it. Returns
// null when out of memory.
addrinfo* addrinfo_entry(int family, const unsigned char* addr, int socktype, int protocol, int port_be,
                         int flags) noexcept;

// local_domain() is what getnameinfo's NI_NOFQDN strips (glibc: the part of
// the host's canonical name after its first dot); looked up once.
std::string local_domain(resolver& r);

}  // namespace moss::detail::dns
