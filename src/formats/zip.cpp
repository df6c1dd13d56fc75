// ZIP central-directory reader. Layouts from PKWARE's APPNOTE (4.3.7 local
// header, 4.3.12 central directory header, 4.3.14-16 ZIP64 end records,
// 4.5.3 ZIP64 extra field). Checks follow hostile-inputs.md §1.5 and
// checklist items 38-48.
#include "src/formats/zip.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/formats/inflate.hpp"

namespace mneme {

bool looks_like_zip(std::span<const std::byte> b) {
  if (b.size() < 4) return false;
  const auto u = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
  return u(0) == 'P' && u(1) == 'K' && ((u(2) == 3 && u(3) == 4) || (u(2) == 5 && u(3) == 6));
}

}  // namespace mneme

namespace mneme::zip {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kEnd64Sig = 0x06064b50;
constexpr std::uint32_t kLocator64Sig = 0x07064b50;
constexpr std::uint64_t kEndSize = 22;
constexpr std::uint64_t kLocatorSize = 20;
constexpr std::uint64_t kEnd64Size = 56;
constexpr std::uint64_t kCentralSize = 46;
constexpr std::uint64_t kLocalSize = 30;
constexpr std::uint64_t kMaxComment = 65535;
constexpr std::uint64_t kSequentialPrefix = kRetainedPrefix;

[[noreturn]] void bad(const Source& src, const std::string& why) {
  fail(ErrorKind::parse, "zip " + printable(src.name()) + ": " + why);
}

std::uint16_t u16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}
std::uint32_t u32(const std::byte* p) {
  return static_cast<std::uint32_t>(u16(p)) | (static_cast<std::uint32_t>(u16(p + 2)) << 16);
}
std::uint64_t u64(const std::byte* p) {
  return static_cast<std::uint64_t>(u32(p)) | (static_cast<std::uint64_t>(u32(p + 4)) << 32);
}

std::vector<std::byte> read_bytes(Source& src, std::uint64_t offset, std::uint64_t n) {
  std::vector<std::byte> buf(n);
  if (n) src.read_at(offset, buf);
  return buf;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

struct Directory {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t count = 0;
};

// Validates one end-record candidate at absolute offset `pos` (whose 22 bytes
// are `rec`); returns why it is not the archive's, or the directory it names.
std::optional<Directory> check_end_record(Source& src, std::uint64_t pos, const std::byte* rec,
                                          std::string& why) {
  const std::uint16_t disk = u16(rec + 4), cd_disk = u16(rec + 6);
  const std::uint64_t n_disk = u16(rec + 8), n_total = u16(rec + 10);
  const std::uint64_t cd_size = u32(rec + 12), cd_off = u32(rec + 16);
  Directory d{cd_off, cd_size, n_total};
  std::uint64_t cd_end = pos;

  bool zip64 = false;
  if (pos >= kLocatorSize) {
    std::byte loc[kLocatorSize];
    src.read_at(pos - kLocatorSize, loc);
    zip64 = u32(loc) == kLocator64Sig;
    if (zip64) {
      const std::uint32_t z_disk = u32(loc + 4), n_disks = u32(loc + 16);
      const std::uint64_t rec_off = u64(loc + 8);
      if (z_disk != 0 || n_disks > 1) {
        fail(ErrorKind::unsupported, "zip " + printable(src.name()) + ": multi-disk archive");
      }
      if (rec_off > pos - kLocatorSize || pos - kLocatorSize - rec_off < kEnd64Size) {
        why = "ZIP64 end record offset out of range";
        return std::nullopt;
      }
      std::byte z[kEnd64Size];
      src.read_at(rec_off, z);
      if (u32(z) != kEnd64Sig) {
        why = "ZIP64 locator does not point at a ZIP64 end record";
        return std::nullopt;
      }
      const std::uint64_t rec_size = u64(z + 4);
      if (rec_size < kEnd64Size - 12 || rec_size > pos - kLocatorSize - rec_off - 12) {
        why = "ZIP64 end record size out of range";
        return std::nullopt;
      }
      if (u32(z + 16) != 0 || u32(z + 20) != 0 || u64(z + 24) != u64(z + 32)) {
        fail(ErrorKind::unsupported, "zip " + printable(src.name()) + ": multi-disk archive");
      }
      const Directory z64{u64(z + 48), u64(z + 40), u64(z + 32)};
      // A 32-bit field that is not saturated must agree with its ZIP64 twin.
      if ((n_total != 0xFFFF && n_total != z64.count) ||
          (cd_size != 0xFFFFFFFF && cd_size != z64.size) ||
          (cd_off != 0xFFFFFFFF && cd_off != z64.offset)) {
        bad(src, "ZIP64 end record disagrees with the end record");
      }
      d = z64;
      cd_end = rec_off;
    }
  }
  if (!zip64) {
    if (n_total == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
      why = "saturated end record without a ZIP64 locator";
      return std::nullopt;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
      fail(ErrorKind::unsupported, "zip " + printable(src.name()) + ": multi-disk archive");
    }
  }
  std::uint64_t end;
  if (__builtin_add_overflow(d.offset, d.size, &end) || end != cd_end) {
    why =
        "central directory does not end where the end record begins "
        "(inconsistent offsets or prepended data)";
    return std::nullopt;
  }
  if (d.count > 0) {
    std::byte sig[4];
    if (d.size < 4) {
      why = "central directory too small for its entry count";
      return std::nullopt;
    }
    src.read_at(d.offset, sig);
    if (u32(sig) != kCentralSig) {
      why = "no central directory header at the directory offset";
      return std::nullopt;
    }
  }
  return d;
}

Directory find_directory(Source& src, std::uint64_t size) {
  if (size < kEndSize) bad(src, "too small to be a zip archive");
  const std::uint64_t tail_len = std::min(size, kEndSize + kMaxComment);
  const std::uint64_t tail_off = size - tail_len;
  const auto tail = read_bytes(src, tail_off, tail_len);
  std::string first_why;
  // Bounded backwards scan; a candidate is taken only if its comment reaches
  // exactly to the end of the file and the directory it names checks out, so
  // a fake signature inside a comment or a directory is skipped.
  for (std::uint64_t i = tail_len - kEndSize + 1; i-- > 0;) {
    const std::byte* rec = tail.data() + i;
    if (u32(rec) != kEndSig) continue;
    if (i + kEndSize + u16(rec + 20) != tail_len) {
      if (first_why.empty()) first_why = "end record comment length does not reach the file end";
      continue;
    }
    std::string why;
    if (auto d = check_end_record(src, tail_off + i, rec, why)) return *d;
    if (first_why.empty()) first_why = why;
  }
  bad(src,
      first_why.empty() ? "no end of central directory record (not a zip archive?)" : first_why);
}

struct Parsed {
  Entry entry;
  std::uint64_t name_len = 0;
};

// Why a zip archive cannot come from a stream beyond its re-readable prefix.
[[noreturn]] void refuse_stream(const Source& src) {
  fail(ErrorKind::unsupported,
       "zip " + printable(src.name()) + ": a zip archive larger than the " +
           std::to_string(kSequentialPrefix / 1024) +
           " KiB a stream keeps re-readable cannot be read from a stream: its list of members "
           "is at its end, and reaching it means consuming the member data before the pipeline "
           "can read it; read it from a file or a range-capable source");
}

// A sequential source of unknown size (a pipe, a socket): finds where the
// archive ends by walking it forward from offset 0, as it was written: local
// headers, sized from the local header (ZIP64 extra when saturated), then the
// central directory headers, the ZIP64 end record and locator, and the end
// record with its comment. Every byte it reads lies in the retained prefix,
// so the directory parse and the pipeline can read them again; an archive
// that does not end inside it is refused. A member whose sizes follow its data
// (flag bit 3, as PyTorch writes) cannot be skipped without inflating or
// scanning it, and is refused. The result only locates the end records: the
// directory they name is then validated as for any other source.
std::uint64_t walk_to_end(Source& src, const Limits& limits) {
  std::uint64_t pos = 0;
  const auto read = [&](std::uint64_t at, std::uint64_t n) {
    if (at > kSequentialPrefix || kSequentialPrefix - at < n) refuse_stream(src);
    return read_bytes(src, at, n);
  };
  enum class Phase { local, central, end64, locator } phase = Phase::local;
  std::uint64_t members = 0;
  for (;;) {
    const std::uint32_t sig = u32(read(pos, 4).data());
    if (phase == Phase::local && sig == kLocalSig) {
      const auto h = read(pos, kLocalSize);
      const std::uint16_t flags = u16(h.data() + 6);
      const std::uint64_t name_len = u16(h.data() + 26), extra_len = u16(h.data() + 28);
      const auto rest = read(pos + kLocalSize, name_len + extra_len);
      const std::string name(reinterpret_cast<const char*>(rest.data()), name_len);
      if (flags & 0x08) {
        fail(ErrorKind::unsupported,
             "zip " + printable(src.name()) + ": member " + printable(name) +
                 " keeps its sizes in a data descriptor after its data; "
                 "a zip with data descriptors needs a random-access source");
      }
      if (++members > limits.max_zip_entries) {
        over_limit("zip " + printable(src.name()), std::to_string(members) + " members",
                   &Limits::max_zip_entries, limits);
      }
      std::uint64_t csize = u32(h.data() + 18);
      const std::uint64_t usize = u32(h.data() + 22);
      if (csize == 0xFFFFFFFF || usize == 0xFFFFFFFF) {
        // A local ZIP64 extra holds both sizes, uncompressed first (APPNOTE 4.5.3).
        bool found = false;
        for (std::uint64_t at = name_len; at + 4 <= name_len + extra_len;) {
          const std::uint16_t id = u16(rest.data() + at);
          const std::uint64_t len = u16(rest.data() + at + 2);
          if (len > name_len + extra_len - at - 4) break;
          if (id == 0x0001) {
            if (len < 16) bad(src, "local ZIP64 extra field too short in " + printable(name));
            csize = u64(rest.data() + at + 4 + 8);
            found = true;
            break;
          }
          at += 4 + len;
        }
        if (!found) bad(src, "saturated local sizes without a ZIP64 extra in " + printable(name));
      }
      pos = checked_add(checked_add(pos, kLocalSize + name_len + extra_len, "zip walk"), csize,
                        "zip walk");
      continue;
    }
    if ((phase == Phase::local || phase == Phase::central) && sig == kCentralSig) {
      phase = Phase::central;
      const auto h = read(pos, kCentralSize);
      pos += kCentralSize + u16(h.data() + 28) + u16(h.data() + 30) + u16(h.data() + 32);
      continue;
    }
    if ((phase == Phase::local || phase == Phase::central) && sig == kEnd64Sig) {
      phase = Phase::end64;
      const auto h = read(pos, 12);
      pos = checked_add(checked_add(pos, 12, "zip walk"), u64(h.data() + 4), "zip walk");
      continue;
    }
    if (phase == Phase::end64 && sig == kLocator64Sig) {
      phase = Phase::locator;
      pos += kLocatorSize;
      continue;
    }
    if (phase != Phase::end64 && sig == kEndSig) {
      const auto h = read(pos, kEndSize);
      const std::uint64_t end = pos + kEndSize + u16(h.data() + 20);
      read(pos + kEndSize, end - pos - kEndSize);  // the comment: the archive ends after it
      return end;
    }
    bad(src, "unexpected record signature at offset " + std::to_string(pos) +
                 " while reading the archive forward");
  }
}

}  // namespace

const Entry* Archive::find(std::string_view name) const {
  auto it =
      std::lower_bound(by_name_.begin(), by_name_.end(), name,
                       [&](std::uint32_t i, std::string_view n) { return entries[i].name < n; });
  if (it == by_name_.end() || entries[*it].name != name) return nullptr;
  return &entries[*it];
}

Archive read_archive(Source& src, const Limits& limits) {
  // Zip from a stream (stdin, a pipe, TCP). The directory is at the end and
  // the pipeline reads a sequential source once, in ascending order, keeping
  // only its first kRetainedPrefix bytes re-readable. Walking the local
  // headers forward instead would not help past that prefix: a member's data
  // must be read (and dropped) to reach the next header, so the catalog could
  // only be complete once every weight byte had gone by; the plan (and a file
  // sink's header) needs every tensor before the first chunk. Streaming those
  // would mean a pipeline that discovers tensors as it reads, or holding the
  // data (twice the memory): so only archives that end inside the prefix are
  // read from a stream, found by a forward walk when the size is unknown.
  auto size_opt = src.size();
  if (src.sequential()) {
    if (size_opt && *size_opt > kSequentialPrefix) refuse_stream(src);
    if (!size_opt) size_opt = walk_to_end(src, limits);
  }
  if (!size_opt) {
    fail(ErrorKind::unsupported, "zip " + printable(src.name()) + ": source size unknown");
  }
  const std::uint64_t size = *size_opt;
  const Directory dir = find_directory(src, size);

  if (dir.count > limits.max_zip_entries) {
    over_limit("zip " + printable(src.name()), std::to_string(dir.count) + " members",
               &Limits::max_zip_entries, limits);
  }
  if (dir.size > limits.max_header_bytes) {
    over_limit("zip " + printable(src.name()),
               "central directory of " + std::to_string(dir.size) + " bytes",
               &Limits::max_header_bytes, limits);
  }
  // Never size anything from the count alone (Go CVE-2021-33196): each entry
  // needs at least 46 directory bytes.
  if (dir.count > dir.size / kCentralSize) bad(src, "entry count exceeds the directory size");

  const auto cd = read_bytes(src, dir.offset, dir.size);
  Archive ar;
  ar.directory_offset = dir.offset;
  ar.directory_size = dir.size;
  ar.entries.reserve(dir.count);
  std::vector<std::uint64_t> name_lens;
  name_lens.reserve(dir.count);

  std::uint64_t pos = 0;
  for (std::uint64_t k = 0; k < dir.count; ++k) {
    if (dir.size - pos < kCentralSize) bad(src, "central directory truncated");
    const std::byte* h = cd.data() + pos;
    if (u32(h) != kCentralSig) bad(src, "bad central directory header signature");
    const std::uint16_t flags = u16(h + 8), method = u16(h + 10);
    std::uint64_t csize = u32(h + 20), usize = u32(h + 24);
    const std::uint64_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
    std::uint64_t disk = u16(h + 34), lho = u32(h + 42);
    const std::uint64_t rec_len = kCentralSize + name_len + extra_len + comment_len;
    if (dir.size - pos < rec_len) bad(src, "central directory entry runs past the directory");
    if (name_len == 0) bad(src, "empty member name");
    if (name_len > limits.max_name_bytes) {
      over_limit("zip " + printable(src.name()),
                 "member name of " + std::to_string(name_len) + " bytes", &Limits::max_name_bytes,
                 limits);
    }
    std::string name(reinterpret_cast<const char*>(h + kCentralSize), name_len);
    if (!valid_utf8(name)) bad(src, "member name is not UTF-8 or holds NUL: " + printable(name));
    if (flags & 0x41) {
      fail(ErrorKind::unsupported,
           "zip " + printable(src.name()) + ": member " + printable(name) + " is encrypted");
    }
    if (method != 0 && method != 8) {
      fail(ErrorKind::unsupported, "zip " + printable(src.name()) + ": member " + printable(name) +
                                       " uses compression method " + std::to_string(method) +
                                       " (only stored and deflate)");
    }

    // Extra fields: walk them all with bounds; the ZIP64 one holds only the
    // saturated fields, in fixed order (APPNOTE 4.5.3).
    const std::byte* ex = h + kCentralSize + name_len;
    std::uint64_t ex_left = extra_len;
    bool seen64 = false;
    const bool sat_u = usize == 0xFFFFFFFF, sat_c = csize == 0xFFFFFFFF, sat_l = lho == 0xFFFFFFFF,
               sat_d = disk == 0xFFFF;
    while (ex_left > 0) {
      if (ex_left < 4) bad(src, "extra field truncated in " + printable(name));
      const std::uint16_t id = u16(ex);
      const std::uint64_t len = u16(ex + 2);
      if (len > ex_left - 4) bad(src, "extra field overruns its entry in " + printable(name));
      if (id == 0x0001) {
        if (seen64) bad(src, "two ZIP64 extra fields in " + printable(name));
        seen64 = true;
        const std::byte* f = ex + 4;
        std::uint64_t f_left = len;
        auto take = [&](std::uint64_t& field, std::uint64_t width) {
          if (f_left < width) bad(src, "ZIP64 extra field too short in " + printable(name));
          field = width == 8 ? u64(f) : u32(f);
          f += width;
          f_left -= width;
        };
        if (sat_u) take(usize, 8);
        if (sat_c) take(csize, 8);
        if (sat_l) take(lho, 8);
        if (sat_d) take(disk, 4);
      }
      ex += 4 + len;
      ex_left -= 4 + len;
    }
    if (!seen64 && (sat_u || sat_c || sat_l || sat_d)) {
      bad(src, "saturated size or offset without a ZIP64 extra field in " + printable(name));
    }
    if (disk != 0) {
      fail(ErrorKind::unsupported, "zip " + printable(src.name()) + ": multi-disk archive");
    }
    if ((usize | csize | lho) >> 63) bad(src, "size or offset above 2^63 in " + printable(name));
    if (method == 0 && csize != usize) {
      bad(src, "stored member " + printable(name) + " has compressed size != size");
    }
    if (method == 8) {
      std::uint64_t ceiling;
      if (csize == 0 && usize > 0) bad(src, "deflated member " + printable(name) + " is empty");
      if (!__builtin_mul_overflow(csize, limits.max_zip_ratio, &ceiling) && usize > ceiling) {
        over_limit("zip " + printable(src.name()),
                   "member " + printable(name) + " inflating " + std::to_string(csize) +
                       " bytes to " + std::to_string(usize) + " (zip bomb?)",
                   &Limits::max_zip_ratio, limits);
      }
    }
    // The local header, the name and the data must fit before the directory.
    const std::uint64_t min_end =
        checked_add(checked_add(lho, kLocalSize + name_len, "zip entry"), csize, "zip entry");
    if (lho >= dir.offset) bad(src, "local header offset past the central directory");
    if (min_end > dir.offset) {
      fail(ErrorKind::security, "zip " + printable(src.name()) + ": member " + printable(name) +
                                    " overlaps the central directory (possible zip bomb)");
    }
    Entry e;
    e.name = std::move(name);
    e.method = static_cast<Method>(method);
    e.crc32 = u32(h + 16);
    e.compressed_size = csize;
    e.uncompressed_size = usize;
    e.local_header_offset = lho;
    ar.entries.push_back(std::move(e));
    name_lens.push_back(name_len);
    pos += rec_len;
  }
  if (pos != dir.size) bad(src, "central directory size does not match its entries");

  // Entries sorted by position: each one's minimal span must end before the
  // next begins. Shared or quoted local headers are the overlap zip bomb.
  std::vector<std::uint32_t> order(ar.entries.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return ar.entries[a].local_header_offset < ar.entries[b].local_header_offset;
  });
  for (std::size_t i = 0; i < order.size(); ++i) {
    Entry& e = ar.entries[order[i]];
    e.span_end = i + 1 < order.size() ? ar.entries[order[i + 1]].local_header_offset : dir.offset;
    const std::uint64_t min_end = e.local_header_offset + kLocalSize + name_lens[order[i]] +
                                  e.compressed_size;  // checked above
    if (min_end > e.span_end) {
      fail(ErrorKind::security, "zip " + printable(src.name()) + ": member " + printable(e.name) +
                                    " overlaps the next member (possible zip bomb)");
    }
  }

  ar.by_name_ = std::move(order);
  std::sort(ar.by_name_.begin(), ar.by_name_.end(), [&](std::uint32_t a, std::uint32_t b) {
    return ar.entries[a].name < ar.entries[b].name;
  });
  for (std::size_t i = 1; i < ar.by_name_.size(); ++i) {
    if (ar.entries[ar.by_name_[i]].name == ar.entries[ar.by_name_[i - 1]].name) {
      bad(src, "duplicate member name " + printable(ar.entries[ar.by_name_[i]].name));
    }
  }
  return ar;
}

std::uint64_t data_offset(Source& src, const Entry& e) {
  const std::uint64_t header_len = kLocalSize + e.name.size();
  if (e.span_end - e.local_header_offset < header_len) bad(src, "local header out of range");
  const auto h = read_bytes(src, e.local_header_offset, header_len);
  if (u32(h.data()) != kLocalSig) {
    bad(src, "missing local header signature for " + printable(e.name));
  }
  if (u16(h.data() + 6) & 0x41) {
    fail(ErrorKind::unsupported,
         "zip " + printable(src.name()) + ": member " + printable(e.name) + " is encrypted");
  }
  if (u16(h.data() + 8) != static_cast<std::uint16_t>(e.method)) {
    bad(src, "local header method differs from the directory for " + printable(e.name));
  }
  if (u16(h.data() + 26) != e.name.size() ||
      std::memcmp(h.data() + kLocalSize, e.name.data(), e.name.size()) != 0) {
    bad(src, "local header name differs from the directory name " + printable(e.name));
  }
  const std::uint64_t data = e.local_header_offset + header_len + u16(h.data() + 28);
  if (data > e.span_end || e.span_end - data < e.compressed_size) {
    fail(ErrorKind::security, "zip " + printable(src.name()) + ": member " + printable(e.name) +
                                  " data runs into the next member (possible zip bomb)");
  }
  return data;
}

std::vector<std::byte> read_member_prefix(Source& src, const Entry& e, std::uint64_t data_start,
                                          std::size_t n, const Limits& limits) {
  const std::size_t want =
      static_cast<std::size_t>(std::min<std::uint64_t>(n, e.uncompressed_size));
  std::vector<std::byte> out(want);
  if (want == 0) return out;
  if (e.method == Method::stored) {
    src.read_at(data_start, out);
    return out;
  }
  Inflater inf(e.compressed_size, e.uncompressed_size, limits.max_zip_ratio);
  // An honest stream yields `want` bytes from about as many compressed ones;
  // runs of empty blocks that yield nothing are cut off.
  const std::uint64_t max_in = checked_add(2 * static_cast<std::uint64_t>(want), 65536, "inflate");
  std::vector<std::byte> chunk(std::min<std::uint64_t>(e.compressed_size, 65536));
  std::size_t produced = 0;
  while (produced < want) {
    const std::uint64_t in_pos = inf.total_in();
    if (in_pos >= max_in) {
      fail(ErrorKind::limit, "zip " + printable(src.name()) + ": member " + printable(e.name) +
                                 " header does not inflate within a bounded input");
    }
    const std::uint64_t n_in = std::min<std::uint64_t>(chunk.size(), e.compressed_size - in_pos);
    std::span<const std::byte> in(chunk.data(), n_in);
    if (n_in) src.read_at(data_start + in_pos, std::span<std::byte>(chunk.data(), n_in));
    const auto p = inf.feed(in, std::span<std::byte>(out).subspan(produced));
    produced += p.produced;
    if (p.consumed == 0 && p.produced == 0 && produced < want) {
      bad(src, "deflate stream of " + printable(e.name) + " stalls");
    }
  }
  return out;
}

std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> bytes) {
  uLong c = crc;
  while (!bytes.empty()) {
    const std::size_t n = std::min<std::size_t>(bytes.size(), UINT_MAX);
    c = ::crc32(c, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(n));
    bytes = bytes.subspan(n);
  }
  return static_cast<std::uint32_t>(c);
}

void check_crc(std::string_view source_name, std::string_view member, std::uint32_t expected,
               std::uint32_t computed, std::string_view what) {
  if (expected == computed) return;
  char hex[40];
  std::snprintf(hex, sizeof hex, "recorded %08x, computed %08x", expected, computed);
  fail(ErrorKind::parse, "zip " + printable(std::string(source_name)) + ": member " +
                             printable(member) + (what.empty() ? std::string() : " (" + std::string(what) + ")") +
                             " fails its CRC-32 check (" + hex + "): corrupt data");
}

std::vector<std::byte> read_member(Source& src, const Entry& e, std::uint64_t max_bytes,
                                   const Limits& limits) {
  if (e.uncompressed_size > max_bytes) {
    fail(ErrorKind::limit, "zip " + printable(src.name()) + ": member " + printable(e.name) +
                               " of " + std::to_string(e.uncompressed_size) +
                               " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  const std::uint64_t start = data_offset(src, e);
  if (e.method == Method::stored) {
    auto out = read_bytes(src, start, e.uncompressed_size);
    check_crc(src.name(), e.name, e.crc32, crc32_update(0, out));
    return out;
  }
  std::vector<std::byte> out(e.uncompressed_size);
  Inflater inf(e.compressed_size, e.uncompressed_size, limits.max_zip_ratio);
  std::vector<std::byte> chunk(std::min<std::uint64_t>(e.compressed_size, 65536));
  std::size_t produced = 0;
  while (!inf.finished()) {
    const std::uint64_t in_pos = inf.total_in();
    const std::uint64_t n_in = std::min<std::uint64_t>(chunk.size(), e.compressed_size - in_pos);
    if (n_in) src.read_at(start + in_pos, std::span<std::byte>(chunk.data(), n_in));
    const auto p = inf.feed(std::span<const std::byte>(chunk.data(), n_in),
                            std::span<std::byte>(out).subspan(produced));
    produced += p.produced;
    if (p.consumed == 0 && p.produced == 0 && !inf.finished()) {
      bad(src, "deflate stream of " + printable(e.name) + " stalls");
    }
  }
  check_crc(src.name(), e.name, e.crc32, crc32_update(0, out));
  return out;
}

}  // namespace mneme::zip
