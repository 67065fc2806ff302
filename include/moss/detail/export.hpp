// detail/export.hpp: MOSS_API, what libmoss.so exports.
//
// libmoss is built with hidden symbol visibility (lib/meson.build), so a
// name is visible to programs and to other shared objects only when its
// declaration in a public header carries MOSS_API: a non-inline function, a
// class with out-of-line members, a vtable or a typeinfo (every exception
// type, so `catch` matches across shared objects), or an inline variable the
// library and its users must share. Everything else of lib/ stays inside the
// library. tests/exported_symbols_test.sh checks the result.
#pragma once

#if defined(_WIN32)
#define MOSS_API
#else
#define MOSS_API __attribute__((visibility("default")))
#endif
