// elf_symbols.cpp: see elf_symbols.hpp. The file is mapped read-only and
// every bound checked before use: a truncated or foreign file gives no name,
// never a crash.
#include "debug/elf_symbols.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moss::detail {

namespace {

struct function_symbol {
  std::uintptr_t value;  // as the file has it
  std::uintptr_t size;
  std::string name;
};

struct symbol_table {
  bool relative = true;  // values are offsets from the load base (ET_DYN: a shared object, a PIE)
  std::vector<function_symbol> functions;  // by value
};

// in_file() says whether [off, off + len) lies within a file of size bytes.
bool in_file(std::uint64_t off, std::uint64_t len, std::uint64_t size) noexcept {
  return off <= size && len <= size - off;
}

symbol_table read_table(const char* path) {
  symbol_table t;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return t;
  struct stat st{};
  void* map = MAP_FAILED;
  if (::fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(sizeof(Elf64_Ehdr)))
    map = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return t;
  const auto* file = static_cast<const unsigned char*>(map);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(file);
  bool ok = std::equal(eh->e_ident, eh->e_ident + SELFMAG, ELFMAG) && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
            eh->e_shentsize == sizeof(Elf64_Shdr) && in_file(eh->e_shoff, std::uint64_t{eh->e_shnum} * sizeof(Elf64_Shdr), size);
  if (ok) {
    t.relative = eh->e_type == ET_DYN;
    const auto* sections = reinterpret_cast<const Elf64_Shdr*>(file + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; ++i) {
      const Elf64_Shdr& symtab = sections[i];
      if (symtab.sh_type != SHT_SYMTAB || symtab.sh_entsize != sizeof(Elf64_Sym) || symtab.sh_link >= eh->e_shnum) continue;
      const Elf64_Shdr& strtab = sections[symtab.sh_link];
      if (!in_file(symtab.sh_offset, symtab.sh_size, size) || !in_file(strtab.sh_offset, strtab.sh_size, size)) continue;
      const auto* syms = reinterpret_cast<const Elf64_Sym*>(file + symtab.sh_offset);
      const char* names = reinterpret_cast<const char*>(file + strtab.sh_offset);
      for (std::uint64_t k = 0; k < symtab.sh_size / sizeof(Elf64_Sym); ++k) {
        const Elf64_Sym& s = syms[k];
        if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
        if (s.st_name >= strtab.sh_size) continue;
        const char* name = names + s.st_name;
        std::size_t len = ::strnlen(name, strtab.sh_size - s.st_name);
        if (len == 0 || len == strtab.sh_size - s.st_name) continue;  // empty, or not terminated in the table
        t.functions.push_back({s.st_value, s.st_size, std::string(name, len)});
      }
    }
    std::sort(t.functions.begin(), t.functions.end(),
              [](const function_symbol& a, const function_symbol& b) { return a.value < b.value; });
  }
  ::munmap(map, static_cast<std::size_t>(st.st_size));
  return t;
}

}  // namespace

std::string elf_function(const char* path, std::uintptr_t base, std::uintptr_t addr, std::uintptr_t* start) {
  static std::mutex lock;
  static std::map<std::string, symbol_table> tables;  // by path; kept for the process's life
  std::lock_guard<std::mutex> hold(lock);
  auto it = tables.find(path);
  if (it == tables.end()) it = tables.emplace(path, read_table(path)).first;
  const symbol_table& t = it->second;
  std::uintptr_t value = t.relative ? addr - base : addr;
  auto after = std::upper_bound(t.functions.begin(), t.functions.end(), value,
                                [](std::uintptr_t v, const function_symbol& f) { return v < f.value; });
  if (after == t.functions.begin()) return {};
  const function_symbol& f = *(after - 1);
  if (value - f.value >= std::max<std::uintptr_t>(f.size, 1)) return {};
  *start = t.relative ? base + f.value : f.value;
  return f.name;
}

}  // namespace moss::detail
