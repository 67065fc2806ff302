// elf_symbols.hpp (internal): names for code addresses that dladdr cannot
// name, from the object file's own symbol table (.symtab).
//
// dladdr sees only the dynamic symbol table: the functions an object
// exports. libmoss's internals are hidden, a program's functions are not
// exported without -rdynamic, and static or anonymous-namespace functions
// never are; their names are still in .symtab unless the file was stripped.
// For the dumps and the monitor, not for hot paths: the first lookup in a
// file reads its whole symbol table and keeps the functions' names.
#pragma once

#include <cstdint>
#include <string>

namespace moss::detail {

// elf_function() names the function of the ELF file at path whose code
// covers addr, a run-time address in that file's image loaded at base
// (dladdr's dli_fbase). Sets *start to the function's run-time address.
// Empty if the file cannot be read, has no .symtab, or no function covers
// addr.
std::string elf_function(const char* path, std::uintptr_t base, std::uintptr_t addr, std::uintptr_t* start);

}  // namespace moss::detail
