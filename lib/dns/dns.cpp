// dns.cpp: the dns layer's front end — settings (MOSS_RESOLVER, MOSS_DNS_*),
// libc's own functions, and the public functions, which pick a resolver for
// calls made by a greenlet of a hub thread and call libc's functions for
// every other caller. glibc's result layouts are in glibc_layout.cpp.
#include "dns/resolver.hpp"

#include "core/config.hpp"
#include "core/hub.hpp"
#include "core/parse_count.hpp"
#include "core/sys.hpp"

#include <moss/error.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <netinet/in.h>

namespace moss::detail::dns {

// ---- settings ----------------------------------------------------------------

namespace {

constexpr long max_timeout_ms = 3'600'000;
constexpr long max_tries = 100;

void check(const moss::dns::settings& s, const char* who) {
  if (s.timeout.count() < 1 || s.timeout.count() > max_timeout_ms)
    throw moss::error(std::string(who) + ": timeout of " + std::to_string(s.timeout.count()) +
                      " ms is out of range; accepted: 1 to 3600000 ms");
  if (s.tries < 1 || s.tries > max_tries)
    throw moss::error(std::string(who) + ": tries = " + std::to_string(s.tries) + " is out of range; accepted: 1 to 100");
  if (s.resolver != moss::dns::resolver_kind::ares && s.resolver != moss::dns::resolver_kind::thread &&
      s.resolver != moss::dns::resolver_kind::block)
    throw moss::error(std::string(who) + ": unknown resolver kind; accepted: ares, thread, block");
  if (!s.servers.empty()) parse_servers(s.servers, who);
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

}  // namespace

moss::dns::settings settings_from_environment() {
  moss::dns::settings s;
  if (const char* v = env("MOSS_RESOLVER")) {
    std::string t = v;
    if (t == "ares") s.resolver = moss::dns::resolver_kind::ares;
    else if (t == "thread") s.resolver = moss::dns::resolver_kind::thread;
    else if (t == "block") s.resolver = moss::dns::resolver_kind::block;
    else throw moss::error("moss: MOSS_RESOLVER=\"" + t + "\" is not a resolver; accepted: ares, thread, block");
  }
  if (const char* v = env("MOSS_DNS_SERVERS")) {
    parse_servers(v, "moss: MOSS_DNS_SERVERS");
    s.servers = v;
  }
  long n = 0;
  if (const char* v = env("MOSS_DNS_TIMEOUT_MS")) {
    if (!parse_count(v, 1, max_timeout_ms, &n))
      throw moss::error(std::string("moss: MOSS_DNS_TIMEOUT_MS=\"") + v +
                        "\" is not a timeout; accepted: a whole number of milliseconds from 1 to 3600000");
    s.timeout = std::chrono::milliseconds(n);
  }
  if (const char* v = env("MOSS_DNS_TRIES")) {
    if (!parse_count(v, 1, max_tries, &n))
      throw moss::error(std::string("moss: MOSS_DNS_TRIES=\"") + v +
                        "\" is not a number of tries; accepted: a whole number from 1 to 100");
    s.tries = static_cast<int>(n);
  }
  return s;
}

namespace {

struct store {
  explicit store(moss::dns::settings s) : current(std::move(s)), kind(static_cast<int>(current.resolver)) {}
  std::mutex mu;
  moss::dns::settings current;
  std::atomic<int> kind;
  std::atomic<std::uint64_t> gen{1};
};

// The store once made, for dns_at_fork (which must not make it).
constinit std::atomic<store*> made{nullptr};

// the_store() reads the environment on first use; a malformed value ends
// the program (config.hpp).
store& the_store() {
  static store s([] {
    try {
      return settings_from_environment();
    } catch (const moss::error& e) {
      bad_environment(e);  // exits: see config.hpp
    }
  }());
  made.store(&s, std::memory_order_release);
  return s;
}

bool parse_port(const std::string& text, int* port) {
  long v = 0;
  if (!parse_count(text.c_str(), 1, 65535, &v)) return false;
  *port = static_cast<int>(v);
  return true;
}

}  // namespace

moss::dns::settings current() {
  store& s = the_store();
  std::lock_guard lk(s.mu);
  return s.current;
}

moss::dns::resolver_kind kind() {
  return static_cast<moss::dns::resolver_kind>(the_store().kind.load(std::memory_order_relaxed));
}

std::uint64_t generation() { return the_store().gen.load(std::memory_order_acquire); }

std::vector<server> parse_servers(const std::string& text, const char* what) {
  std::vector<server> out;
  auto bad = [&](const std::string& item) {
    std::string where = item == text ? "" : " in \"" + text + "\"";
    return moss::error(std::string(what) + ": \"" + item + "\"" + where +
                       " is not a server; accepted: ip[:port],... as in 127.0.0.1, 127.0.0.1:5353, "
                       "[::1]:5353 or ::1 (port 1 to 65535)");
  };
  std::size_t start = 0;
  for (;;) {
    std::size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    server s;
    std::string host = item;
    if (!item.empty() && item.front() == '[') {
      std::size_t close = item.find(']');
      if (close == std::string::npos) throw bad(item);
      host = item.substr(1, close - 1);
      std::string rest = item.substr(close + 1);
      if (!rest.empty() && (rest.front() != ':' || !parse_port(rest.substr(1), &s.port))) throw bad(item);
      s.family = AF_INET6;
    } else if (std::count(item.begin(), item.end(), ':') >= 2) {
      s.family = AF_INET6;
    } else {
      std::size_t colon = item.find(':');
      if (colon != std::string::npos) {
        host = item.substr(0, colon);
        if (!parse_port(item.substr(colon + 1), &s.port)) throw bad(item);
      }
      s.family = AF_INET;
    }
    if (host.empty() || inet_pton(s.family, host.c_str(), s.addr.data()) != 1) throw bad(item);
    out.push_back(s);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// ---- libc ----------------------------------------------------------------------

namespace libc {
namespace {

void* find(const char* name) noexcept {
  // libc's own definition, whoever interposes the name.
  static void* handle = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
  void* f = handle != nullptr ? dlsym(handle, name) : nullptr;
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    const char* a = "moss: cannot find libc's ";
    sys::write_stderr(a, std::strlen(a));
    sys::write_stderr(name, std::strlen(name));
    sys::write_stderr("\n", 1);
    std::abort();
  }
  return f;
}

// fn<T>(slot, name): the function, looked up on first use. The slot is a
// constant-initialised atomic, so there is no initialisation order to get
// wrong; two threads looking it up at once store the same value.
template <class T>
T fn(std::atomic<T>& slot, const char* name) noexcept {
  T f = slot.load(std::memory_order_relaxed);
  if (f == nullptr) [[unlikely]] {
    f = reinterpret_cast<T>(find(name));
    slot.store(f, std::memory_order_relaxed);
  }
  return f;
}

using getaddrinfo_t = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
using freeaddrinfo_t = void (*)(addrinfo*);
using getnameinfo_t = int (*)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int);
using gethostbyname2_r_t = int (*)(const char*, int, hostent*, char*, std::size_t, hostent**, int*);
using gethostbyaddr_r_t = int (*)(const void*, socklen_t, int, hostent*, char*, std::size_t, hostent**, int*);

constinit std::atomic<getaddrinfo_t> getaddrinfo_slot{nullptr};
constinit std::atomic<freeaddrinfo_t> freeaddrinfo_slot{nullptr};
constinit std::atomic<getnameinfo_t> getnameinfo_slot{nullptr};
constinit std::atomic<gethostbyname2_r_t> gethostbyname2_r_slot{nullptr};
constinit std::atomic<gethostbyaddr_r_t> gethostbyaddr_r_slot{nullptr};

}  // namespace

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) noexcept {
  return fn(getaddrinfo_slot, "getaddrinfo")(node, service, hints, res);
}
void freeaddrinfo(addrinfo* res) noexcept { fn(freeaddrinfo_slot, "freeaddrinfo")(res); }
int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) noexcept {
  return fn(getnameinfo_slot, "getnameinfo")(sa, salen, host, hostlen, serv, servlen, flags);
}
int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                     int* h_errnop) noexcept {
  return fn(gethostbyname2_r_slot, "gethostbyname2_r")(name, af, ret, buf, buflen, result, h_errnop);
}
int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                    hostent** result, int* h_errnop) noexcept {
  return fn(gethostbyaddr_r_slot, "gethostbyaddr_r")(addr, len, type, ret, buf, buflen, result, h_errnop);
}

}  // namespace libc

namespace {

// cooperative(): may the caller wait on this thread's hub?
bool cooperative() noexcept {
  thread_state* t = this_thread_if_any();
  return t != nullptr && t->hub != nullptr && t->current != t->hub->hub_greenlet();
}

resolver& pick() {
  switch (kind()) {
    case moss::dns::resolver_kind::thread: return thread_resolver();
    case moss::dns::resolver_kind::block: return block_resolver();
    case moss::dns::resolver_kind::ares: break;
  }
  return ares_resolver();
}

// host_buffer: where the non-reentrant functions keep their last result.
struct host_buffer {
  hostent ent{};
  std::vector<char> buf;
};
thread_local host_buffer last_host;

// keep() runs a gethostbyname_r-style call with a buffer of its own, grown
// until the result fits, then moves it into this thread's last_host. The
// buffer is private while the call waits: another greenlet of this thread
// may make such a call meanwhile and replace last_host.
template <class Call>
hostent* keep(Call call) {
  std::vector<char> buf(1024);
  hostent ent{};
  hostent* result = nullptr;
  int herr = 0;
  for (;;) {
    int r = call(&ent, buf.data(), buf.size(), &result, &herr);
    if (r == ERANGE && herr == NETDB_INTERNAL && buf.size() < (std::size_t{1} << 24)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    break;
  }
  h_errno = herr;
  if (result == nullptr) return nullptr;
  last_host.buf = std::move(buf);  // the heap block moves, so ent's pointers stay valid
  last_host.ent = ent;
  return &last_host.ent;
}

}  // namespace
}  // namespace moss::detail::dns

namespace moss::dns {

namespace d = moss::detail::dns;

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (!d::cooperative()) return d::libc::getaddrinfo(node, service, hints, res);
  return d::pick().getaddrinfo(node, service, hints, res);
}

void freeaddrinfo(addrinfo* res) noexcept { d::libc::freeaddrinfo(res); }

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) {
  if (!d::cooperative()) return d::libc::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  return d::pick().getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
}

int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                     int* h_errnop) {
  if (!d::cooperative()) return d::libc::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
  return d::pick().gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                    int* h_errnop) {
  return moss::dns::gethostbyname2_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                    hostent** result, int* h_errnop) {
  if (!d::cooperative()) return d::libc::gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
  return d::pick().gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
}

hostent* gethostbyname2(const char* name, int af) {
  return d::keep([&](hostent* ret, char* buf, std::size_t len, hostent** result, int* herr) {
    return moss::dns::gethostbyname2_r(name, af, ret, buf, len, result, herr);
  });
}

hostent* gethostbyname(const char* name) { return gethostbyname2(name, AF_INET); }

hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
  return d::keep([&](hostent* ret, char* buf, std::size_t blen, hostent** result, int* herr) {
    return moss::dns::gethostbyaddr_r(addr, len, type, ret, buf, blen, result, herr);
  });
}

std::vector<address> resolve(const std::string& host, const std::string& service, int family, int socktype) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_ADDRCONFIG | AI_V4MAPPED;
  addrinfo* res = nullptr;
  int rc = moss::dns::getaddrinfo(host.c_str(), service.empty() ? nullptr : service.c_str(), &hints, &res);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    throw error(rc, "moss: cannot resolve \"" + host + (service.empty() ? "" : "\" service \"" + service) +
                        "\": " + why);
  }
  std::vector<address> out;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    address a;
    std::memcpy(&a.storage, p->ai_addr, std::min<std::size_t>(p->ai_addrlen, sizeof a.storage));
    a.length = p->ai_addrlen;
    a.family = p->ai_family;
    a.socktype = p->ai_socktype;
    a.protocol = p->ai_protocol;
    out.push_back(a);
  }
  moss::dns::freeaddrinfo(res);
  return out;
}

settings current_settings() { return d::current(); }

void configure(const settings& s) {
  d::check(s, "moss::dns::configure");
  d::store& st = d::the_store();
  std::lock_guard lk(st.mu);
  st.current = s;
  st.kind.store(static_cast<int>(s.resolver), std::memory_order_relaxed);
  st.gen.fetch_add(1, std::memory_order_release);
}

}  // namespace moss::dns

namespace moss::detail {

void dns_at_fork(fork_phase p) noexcept {
  dns::store* s = dns::made.load(std::memory_order_acquire);
  if (s == nullptr) return;
  switch (p) {
    case fork_phase::prepare: s->mu.lock(); return;
    case fork_phase::parent: s->mu.unlock(); return;
    case fork_phase::child: new (&s->mu) std::mutex; return;  // held by the prepare step
  }
}

}  // namespace moss::detail
