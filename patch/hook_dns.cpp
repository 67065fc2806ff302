// hook_dns.cpp: getaddrinfo, getnameinfo and the gethostbyname family,
// mapped onto moss::dns (c-ares on the hub by default). freeaddrinfo needs
// no hook: moss::dns lays its lists out as glibc does.
//
// Interrupted lookups (the greenlet was killed or timed out) report what a
// failed system call inside libc would: EAI_SYSTEM with errno set, or for
// the gethostbyname family NETDB_INTERNAL.
#include "hooks.hpp"
#include "real.hpp"

#include <moss/dns.hpp>

#include <cerrno>
#include <exception>

#include <netdb.h>

namespace moss::patch {
namespace {

MOSS_REAL(getaddrinfo, int (*)(const char*, const char*, const addrinfo*, addrinfo**))
MOSS_REAL(getnameinfo, int (*)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int))
MOSS_REAL(gethostbyname, hostent* (*)(const char*))
MOSS_REAL(gethostbyname2, hostent* (*)(const char*, int))
MOSS_REAL(gethostbyname_r, int (*)(const char*, hostent*, char*, size_t, hostent**, int*))
MOSS_REAL(gethostbyname2_r, int (*)(const char*, int, hostent*, char*, size_t, hostent**, int*))
MOSS_REAL(gethostbyaddr, hostent* (*)(const void*, socklen_t, int))
MOSS_REAL(gethostbyaddr_r, int (*)(const void*, socklen_t, int, hostent*, char*, size_t, hostent**, int*))

// EAI-returning calls.
template <class F>
int eai_guarded(F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    errno = interrupted(std::current_exception());
    return EAI_SYSTEM;
  }
}

// hostent* calls: null and h_errno.
template <class F>
hostent* host_guarded(F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    errno = interrupted(std::current_exception());
    h_errno = NETDB_INTERNAL;
    return nullptr;
  }
}

// _r calls: an errno value, *result null, *h_errnop NETDB_INTERNAL.
template <class F>
int r_guarded(hostent** result, int* h_errnop, F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    int err = interrupted(std::current_exception());
    if (result != nullptr) *result = nullptr;
    if (h_errnop != nullptr) *h_errnop = NETDB_INTERNAL;
    return err;
  }
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;
namespace dns = moss::dns;

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (!cooperative(family_dns)) return real_getaddrinfo()(node, service, hints, res);
  return eai_guarded([&] { return dns::getaddrinfo(node, service, hints, res); });
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) {
  if (!cooperative(family_dns)) return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
  return eai_guarded([&] { return dns::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags); });
}

hostent* gethostbyname(const char* name) {
  if (!cooperative(family_dns)) return real_gethostbyname()(name);
  return host_guarded([&] { return dns::gethostbyname(name); });
}

hostent* gethostbyname2(const char* name, int af) {
  if (!cooperative(family_dns)) return real_gethostbyname2()(name, af);
  return host_guarded([&] { return dns::gethostbyname2(name, af); });
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop) {
  if (!cooperative(family_dns)) return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop);
  return r_guarded(result, h_errnop, [&] { return dns::gethostbyname_r(name, ret, buf, buflen, result, h_errnop); });
}

int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, size_t buflen, hostent** result,
                     int* h_errnop) {
  if (!cooperative(family_dns)) return real_gethostbyname2_r()(name, af, ret, buf, buflen, result, h_errnop);
  return r_guarded(result, h_errnop,
                   [&] { return dns::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop); });
}

hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
  if (!cooperative(family_dns)) return real_gethostbyaddr()(addr, len, type);
  return host_guarded([&] { return dns::gethostbyaddr(addr, len, type); });
}

int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, size_t buflen,
                    hostent** result, int* h_errnop) {
  if (!cooperative(family_dns)) return real_gethostbyaddr_r()(addr, len, type, ret, buf, buflen, result, h_errnop);
  return r_guarded(result, h_errnop,
                   [&] { return dns::gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop); });
}

}  // extern "C"
