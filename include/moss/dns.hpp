/// @file
/// dns.hpp: name lookups that wait like a greenlet, not like a thread.
///
///   addrinfo hints{};
///   hints.ai_socktype = SOCK_STREAM;
///   addrinfo* res;
///   int rc = moss::dns::getaddrinfo("example.com", "https", &hints, &res);
///   ...
///   moss::dns::freeaddrinfo(res);
///
/// Every function takes libc's arguments and gives libc's (glibc's) results
/// and error codes, so the patch layer can map the libc names onto them. From
/// a greenlet of a hub thread, a lookup waits cooperatively while the hub
/// runs others (many lookups run concurrently on one hub); anywhere else —
/// a plain thread, the hub greenlet itself — they call libc's functions.
///
/// Resolvers (MOSS_RESOLVER, or configure()):
///   ares    (default) one c-ares channel per hub, driven by its poller and
///           timers. /etc/resolv.conf (servers, search, ndots) is read by
///           c-ares when the channel is made. /etc/hosts is read for a name
///           the file mentions, at every lookup; each hub keeps an index of
///           those names, re-checked at most once a second, so a name newly
///           added to the file is seen within about a second (an entry
///           changed or removed, at once). Names glibc parses
///           as addresses, a null node and AI_NUMERICHOST never touch the
///           network. Other NSS sources in /etc/nsswitch.conf (mdns, ldap,
///           systemd's myhostname) are not consulted, and "localhost" is
///           always the loopback address (RFC 6761) even where /etc/hosts
///           lacks the family asked for.
///   thread  libc's functions on moss's thread pool (run_in_thread): exactly
///           glibc's answers, a thread per lookup in flight.
///   block   libc's functions called directly: the whole hub waits.
///
/// These functions throw only what a wait can throw (moss::greenlet_exit when
/// the caller is killed, moss::timeout_error under moss::timeout) and
/// moss::error for a malformed MOSS_* setting.
#pragma once

#include <moss/detail/export.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>

#include <moss/error.hpp>

namespace moss::dns {

///@{
/// getaddrinfo() is ::getaddrinfo: 0 and a list in *res, or an EAI_* code
/// (EAI_NONAME, EAI_AGAIN, EAI_NODATA, EAI_FAMILY, EAI_SERVICE, ...). The list
/// is laid out as glibc lays out its own, so ::freeaddrinfo frees it too.
MOSS_API int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res);
/// freeaddrinfo() frees a list from getaddrinfo() (::freeaddrinfo does too).
MOSS_API void freeaddrinfo(addrinfo* res) noexcept;
///@}

/// getnameinfo() is ::getnameinfo (NI_* flags, EAI_* codes, EAI_OVERFLOW).
MOSS_API int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags);

///@{
/// The gethostbyname family: results and h_errno (HOST_NOT_FOUND, TRY_AGAIN,
/// NO_DATA, NO_RECOVERY, NETDB_INTERNAL) as glibc gives them. The _r forms
/// return 0, ERANGE when buf is too small, or an errno value. The others
/// return a hostent that the next such call on this thread overwrites, and
/// set h_errno; in greenlets prefer the _r forms.
MOSS_API hostent* gethostbyname(const char* name);
MOSS_API hostent* gethostbyname2(const char* name, int af);
MOSS_API int gethostbyname_r(const char* name, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                    int* h_errnop);
MOSS_API int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                     int* h_errnop);
MOSS_API hostent* gethostbyaddr(const void* addr, socklen_t len, int type);
MOSS_API int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                    hostent** result, int* h_errnop);
///@}

/// error: a failed resolve(); code() is the EAI_* value.
class MOSS_API error : public moss::error {
 public:
  /// error(code, what) carries the EAI_* code and the message.
  error(int code, const std::string& what) : moss::error(what), code_(code) {}
  /// code() is the EAI_* value.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

///@{
/// address: one result of resolve().
struct address {
  /// The address itself, length bytes of it.
  sockaddr_storage storage{};
  /// How much of storage is the address.
  socklen_t length = 0;
  ///@{
  /// getaddrinfo's ai_family, ai_socktype and ai_protocol for it.
  int family = 0;
  int socktype = 0;
  int protocol = 0;
  ///@}
  /// get() is the address as a sockaddr for connect() or bind().
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
};
///@}

/// resolve() is getaddrinfo for C++: the addresses of host (a name or an
/// address) for service, in getaddrinfo's order. Throws moss::dns::error
/// "moss: cannot resolve \"host\": <gai_strerror>" when getaddrinfo fails.
MOSS_API std::vector<address> resolve(const std::string& host, const std::string& service = "", int family = AF_UNSPEC,
                             int socktype = SOCK_STREAM);

// ---- settings ----

/// resolver_kind: which resolver serves lookups (see the top of this file).
enum class resolver_kind { ares, thread, block };

/// settings: how lookups are made; see current_settings() and configure().
struct settings {
  /// The resolver (MOSS_RESOLVER).
  resolver_kind resolver = resolver_kind::ares;
  /// Name servers, "ip[:port],..." (IPv6 as [addr]:port or a bare addr);
  /// empty: those of /etc/resolv.conf.
  std::string servers;
  /// How long the first try waits for an answer; c-ares doubles it on each
  /// later round over the servers.
  std::chrono::milliseconds timeout{2000};
  /// Rounds over the servers before a lookup fails with EAI_AGAIN.
  int tries = 2;
};

/// current_settings() returns the settings in effect: what configure() set
/// last, else MOSS_RESOLVER (ares|thread|block), MOSS_DNS_SERVERS,
/// MOSS_DNS_TIMEOUT_MS (1 to 3600000) and MOSS_DNS_TRIES (1 to 100), read on
/// first use; an empty variable counts as unset. Throws moss::error naming a
/// malformed variable and what it accepts.
MOSS_API settings current_settings();

/// configure() replaces the settings for the whole process; throws
/// moss::error (and changes nothing) if one is out of range or malformed.
/// Lookups already in flight finish with the old settings; each hub uses the
/// new ones from its next lookup.
MOSS_API void configure(const settings& s);

}  // namespace moss::dns
