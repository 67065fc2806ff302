// resolver_block.cpp: the `block` resolver — libc's own functions, called
// on the greenlet's thread. The whole hub waits for each lookup; it exists
// for programs that must get exactly libc's answers and do few lookups.
#include "dns/resolver.hpp"

namespace moss::detail::dns {
namespace {

class block_resolver_impl final : public resolver {
 public:
  int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) override {
    return libc::getaddrinfo(node, service, hints, res);
  }
  int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                  socklen_t servlen, int flags) override {
    return libc::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  }
  int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                       int* h_errnop) override {
    return libc::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
  }
  int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                      hostent** result, int* h_errnop) override {
    return libc::gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
  }
};

}  // namespace

resolver& block_resolver() {
  static block_resolver_impl r;
  return r;
}

}  // namespace moss::detail::dns
