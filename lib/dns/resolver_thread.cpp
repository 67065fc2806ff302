// resolver_thread.cpp: the `thread` resolver — libc's own functions on
// moss's thread pool (run_in_thread). The greenlet waits, the hub runs the
// others; answers are exactly libc's (every NSS source), at the price of a
// pool thread per lookup in flight.
//
// run_in_thread lets a kill that arrives while the function runs take effect
// only when it returns, so the caller's buffers stay valid throughout; what
// libc allocated for a caller that is gone by then is freed here. errno is
// per thread, so the pool thread's is carried back.
#include "dns/resolver.hpp"

#include <moss/threadpool.hpp>

#include <cerrno>
#include <utility>

namespace moss::detail::dns {
namespace {

// in_pool() runs call() on the pool and gives the caller the errno it left.
template <class Call>
int in_pool(Call call) {
  int err = 0;
  int rc = moss::run_in_thread([&] {
    int r = call();
    err = errno;
    return r;
  });
  errno = err;
  return rc;
}

class thread_resolver_impl final : public resolver {
 public:
  int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) override {
    struct owned {
      addrinfo* p = nullptr;
      ~owned() {
        if (p != nullptr) libc::freeaddrinfo(p);
      }
    } out;
    int rc = in_pool([&] { return libc::getaddrinfo(node, service, hints, &out.p); });
    if (rc == 0) *res = std::exchange(out.p, nullptr);
    return rc;
  }
  int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                  socklen_t servlen, int flags) override {
    return in_pool([&] { return libc::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags); });
  }
  int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                       int* h_errnop) override {
    return in_pool([&] { return libc::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop); });
  }
  int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                      hostent** result, int* h_errnop) override {
    return in_pool([&] { return libc::gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop); });
  }
};

}  // namespace

resolver& thread_resolver() {
  static thread_resolver_impl r;
  return r;
}

}  // namespace moss::detail::dns
