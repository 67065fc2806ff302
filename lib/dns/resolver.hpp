// resolver.hpp (internal): what the dns layer's front end (lib/dns/dns.cpp)
// shares with its resolvers.
//
// A resolver implements the four lookups everything else is built on —
// getaddrinfo, getnameinfo, gethostbyname2_r, gethostbyaddr_r — with glibc's
// arguments, results and error codes. The front end picks one per call
// (MOSS_RESOLVER), and calls it only from a greenlet of a hub thread; from
// anywhere else it calls libc's own functions.
//
//   ares    lib/dns/resolver_ares.cpp    one c-ares channel per hub, on its poller
//   thread  lib/dns/resolver_thread.cpp  libc's functions on the thread pool
//   block   lib/dns/resolver_block.cpp   libc's functions, blocking the hub
#pragma once

#include <moss/dns.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>

namespace moss::detail::dns {

// ---- settings -------------------------------------------------------------

// current() returns the process's settings, reading MOSS_RESOLVER,
// MOSS_DNS_SERVERS, MOSS_DNS_TIMEOUT_MS and MOSS_DNS_TRIES on first use.
// Throws moss::error if one of them is malformed.
moss::dns::settings current();

// settings_from_environment() parses the MOSS_* variables now (current()
// does it once); exposed for tests.
moss::dns::settings settings_from_environment();

// kind() is the resolver in effect (cheap: no lock, no copy).
moss::dns::resolver_kind kind();

// generation() changes whenever configure() does; a hub's c-ares channel
// remembers the generation it was built for.
std::uint64_t generation();

// server: one parsed entry of a servers list.
struct server {
  int family = 0;                   // AF_INET or AF_INET6
  std::array<unsigned char, 16> addr{};
  int port = 53;
};

// parse_servers() parses "ip[:port],..." (what MOSS_DNS_SERVERS holds);
// throws moss::error naming `what` and the accepted forms.
std::vector<server> parse_servers(const std::string& text, const char* what);

// ---- libc ------------------------------------------------------------------

// libc's own functions, looked up in libc itself (not with RTLD_NEXT, which
// from a statically linked libmoss or a library loaded before moss's patch
// layer could find the patch layer's hooks and recurse).
namespace libc {
int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) noexcept;
void freeaddrinfo(addrinfo* res) noexcept;
int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) noexcept;
int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                     int* h_errnop) noexcept;
int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                    hostent** result, int* h_errnop) noexcept;
}  // namespace libc

// ---- resolvers ---------------------------------------------------------------

class resolver {
 public:
  virtual int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) = 0;
  virtual int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                          socklen_t servlen, int flags) = 0;
  virtual int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen,
                               hostent** result, int* h_errnop) = 0;
  virtual int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf,
                              std::size_t buflen, hostent** result, int* h_errnop) = 0;

 protected:
  ~resolver() = default;
};

resolver& ares_resolver();
// ares_in_flight() counts this hub's c-ares lookups whose callback has not
// run, abandoned ones included (for tests).
std::size_t ares_in_flight() noexcept;
resolver& thread_resolver();
resolver& block_resolver();

}  // namespace moss::detail::dns
