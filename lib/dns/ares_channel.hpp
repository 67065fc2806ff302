// ares_channel.hpp (internal): the c-ares plumbing of the `ares` resolver
// and the lookups made through it, with c-ares' statuses and results;
// lib/dns/resolver_ares.cpp turns those into glibc's conventions.
#pragma once

#include "dns/glibc_layout.hpp"

#include <array>
#include <cstddef>
#include <memory>

#include <ares.h>
#include <sys/socket.h>

namespace moss::detail {
class waiter;
}

namespace moss::detail::dns {

class channel;

// request: one lookup, from submission to the callback.
struct request {
  channel* owner = nullptr;
  waiter* w = nullptr;     // the greenlet waiting for it, while it waits
  bool done = false;       // the callback has run
  bool abandoned = false;  // nobody waits any more: the callback frees it
  int status = ARES_ECANCELLED;
  ares_addrinfo* ai = nullptr;
  host_entry host;
  int family = AF_UNSPEC;                // of the address a PTR query asks about
  std::array<unsigned char, 16> addr{};
  ~request() {
    if (ai != nullptr) ares_freeaddrinfo(ai);
  }
};

// lookup_name() asks c-ares for the addresses (q->ai) of a name that is not
// an address, from the sources in c-ares' order; q->status is c-ares'.
// flags are ares_addrinfo_hints' (ARES_AI_*). Waits on the hub; must be
// called from a greenlet of a hub thread.
std::unique_ptr<request> lookup_name(const char* name, int family, int flags);

// lookup_address() asks for the name of an address (q->host), from the
// sources in c-ares' order. family is AF_INET or AF_INET6.
std::unique_ptr<request> lookup_address(const unsigned char* addr, int family);

// hosts_entry() fills e with /etc/hosts' entry for name in family af, aliases
// included, when c-ares reads the file before DNS and the file has one:
// what glibc's "files" source gives gethostbyname. Returns false otherwise.
bool hosts_entry(const char* name, int af, host_entry& e);

}  // namespace moss::detail::dns
