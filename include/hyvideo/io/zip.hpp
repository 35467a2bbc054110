#pragma once
// zip: the stored entries of a ZIP archive, read in place from a memory mapping.
//
// PyTorch's torch.save format (since 1.6) is a ZIP archive: `<root>/data.pkl` (the pickled object),
// `<root>/data/<key>` (one entry per tensor storage, raw little-endian bytes), and a few small records.
// torch.save writes every entry *stored* (uncompressed) and pads the local headers so that each
// storage starts on a 64-byte boundary; that is what lets a reader hand out tensors that point into
// the mapped file instead of copying 25 GB. This reader supports exactly that: stored entries are
// returned as spans of the mapping, compressed entries are listed but refused when read (an archive
// re-packed by another tool: unpack it and re-zip with `zip -0`, or re-save it with torch.save).
//
// Like the safetensors reader, it treats the file as untrusted: every offset and size is checked
// against the file before use, so a damaged archive gives a hyvideo::Error naming the file, never an
// out-of-bounds read. Checked: the end-of-central-directory record (and its ZIP64 form, which
// torch.save always writes and archives over 4 GiB need), the central directory's extent and entry
// count, every entry's local header (which must agree with the central directory on the name), data
// inside the file and before the central directory, stored sizes that agree, names that are unique
// and free of NUL bytes, and entries that do not overlap one another. Not supported, with an error
// saying so: encryption and multi-volume archives. fuzz/fuzz_torch_pickle.cpp exercises this file
// together with the pickle reader.
//
// CRC-32s are not checked when the archive is opened: that would read every byte of a checkpoint
// whose pages are otherwise only touched as tensors are used. verify_crc() checks one entry on
// request (the .pt reader checks data.pkl, which is small; `hyvideo inspect --verify` checks all).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/io/mapped_file.hpp"

namespace hyvideo {

namespace detail {

// CRC-32 (ISO-HDLC, the ZIP checksum), eight bytes per step with the usual slicing tables: about
// 2 GB/s here, so verifying a 25 GB checkpoint costs seconds rather than a minute.
struct Crc32Tables {
    std::array<std::array<std::uint32_t, 256>, 8> t{};
    constexpr Crc32Tables() {
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[0][i] = c;
        }
        for (std::size_t s = 1; s < 8; ++s)
            for (std::size_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
    }
};
inline constexpr Crc32Tables crc32_tables{};

}  // namespace detail

// The CRC-32 of `size` bytes, continuing from `crc` (0 to start), as zlib's crc32() computes it.
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) {
    const auto& t = detail::crc32_tables.t;
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t c = ~crc;
    for (; size >= 8; size -= 8, p += 8) {
        const std::uint32_t lo = c ^ (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
                                      std::uint32_t{p[3]} << 24);
        c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
            t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    for (; size > 0; --size, ++p) c = t[0][(c ^ *p) & 0xFFu] ^ (c >> 8);
    return ~c;
}

// One entry of the central directory, with the position of its data already resolved.
struct ZipEntry {
    std::string name;
    std::uint16_t method = 0;  // 0 = stored; anything else is compressed
    std::uint16_t flags = 0;
    std::uint32_t crc32 = 0;
    std::uint64_t compressed_size = 0;
    std::uint64_t size = 0;           // uncompressed
    std::uint64_t header_offset = 0;  // the local header
    std::uint64_t data_offset = 0;    // the first byte of the (stored or compressed) data

    bool stored() const { return method == 0; }
};

class ZipArchive {
public:
    static ZipArchive open(const std::filesystem::path& path) {
        ZipArchive z;
        z.path_ = path;
        z.mapping_ = map_file(path, 1, "a ZIP archive (its end record alone is 22)");
        z.parse();
        return z;
    }

    const std::filesystem::path& path() const { return path_; }
    std::uint64_t file_size() const { return mapping_->size(); }
    const std::shared_ptr<const FileMapping>& mapping() const { return mapping_; }
    const std::vector<ZipEntry>& entries() const { return entries_; }

    const ZipEntry* find(std::string_view name) const {
        const auto it = by_name_.find(std::string(name));
        return it == by_name_.end() ? nullptr : &entries_[it->second];
    }

    // The bytes of a stored entry, inside the mapping (valid while the mapping lives).
    std::span<const std::byte> data(const ZipEntry& e) const {
        if (!e.stored())
            fail("entry \"", e.name, "\" is compressed (method ", e.method, ", ", method_name(e.method),
                 "); torch.save stores entries uncompressed and hyvideo reads them in place. The archive was "
                 "re-packed by another tool: re-save it with torch.save, or unzip it and re-zip with `zip -0`");
        return {mapping_->data() + e.data_offset, static_cast<std::size_t>(e.size)};
    }

    bool crc_matches(const ZipEntry& e) const {
        const auto bytes = data(e);
        return crc32(bytes.data(), bytes.size()) == e.crc32;
    }
    void verify_crc(const ZipEntry& e) const {
        const auto bytes = data(e);
        const std::uint32_t got = crc32(bytes.data(), bytes.size());
        if (got != e.crc32)
            fail("entry \"", e.name, "\" is damaged: its CRC-32 is ", hex(got), ", the directory says ", hex(e.crc32));
    }

private:
    // Signatures and fixed record sizes of the ZIP format (PKWARE APPNOTE 6.3).
    static constexpr std::uint32_t sig_local = 0x04034b50, sig_central = 0x02014b50, sig_end = 0x06054b50,
                                   sig_end64 = 0x06064b50, sig_locator64 = 0x07064b50;
    static constexpr std::uint64_t local_size = 30, central_size = 46, end_size = 22, end64_size = 56,
                                   locator64_size = 20;
    static constexpr std::uint16_t flag_encrypted = 0x0001, flag_strong_encryption = 0x0040;

    ZipArchive() = default;

    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        throw Error(detail::concat(path_.string(), ": ", std::forward<Args>(args)...));
    }
    static std::string hex(std::uint32_t v) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%08x", v);
        return buf;
    }
    static const char* method_name(std::uint16_t m) {
        switch (m) {
            case 8: return "deflate";
            case 9: return "deflate64";
            case 12: return "bzip2";
            case 14: return "lzma";
            case 93: return "zstandard";
            default: return "unknown";
        }
    }

    // Little-endian reads at an offset the caller has bounds-checked.
    std::uint16_t u16(std::uint64_t at) const {
        const auto* p = reinterpret_cast<const unsigned char*>(mapping_->data() + at);
        return static_cast<std::uint16_t>(p[0] | p[1] << 8);
    }
    std::uint32_t u32(std::uint64_t at) const { return u16(at) | std::uint32_t{u16(at + 2)} << 16; }
    std::uint64_t u64(std::uint64_t at) const { return u32(at) | std::uint64_t{u32(at + 4)} << 32; }

    // Whether [at, at + n) lies inside [0, limit), without overflow.
    static bool fits(std::uint64_t at, std::uint64_t n, std::uint64_t limit) { return at <= limit && n <= limit - at; }

    void parse() {
        const std::uint64_t size = mapping_->size();
        // Checked first, whatever the size: a bare pickle is what PyTorch before 1.6 saved.
        const auto* first = reinterpret_cast<const unsigned char*>(mapping_->data());
        if (first[0] == 0x80 && size > 1 && first[1] <= 5)
            fail("a bare pickle, not a ZIP archive: this is the legacy torch.save format of PyTorch before "
                 "1.6. Load it with PyTorch and save it again (torch.save) to get the zip format");
        if (size < end_size) fail("file is ", size, " bytes, too short for a ZIP archive (its end record alone is 22)");

        // The end record is the last 22 bytes plus a comment of up to 65,535 bytes. Scanning backwards
        // and requiring the comment to end exactly at the end of the file rules out a signature that
        // merely occurs inside the comment or the data.
        std::uint64_t end = size;  // sentinel: not found
        const std::uint64_t lowest = size - end_size > 0xFFFF ? size - end_size - 0xFFFF : 0;
        for (std::uint64_t at = size - end_size + 1; at-- > lowest;) {
            if (u32(at) == sig_end && at + end_size + u16(at + 20) == size) {
                end = at;
                break;
            }
        }
        if (end == size) fail("not a ZIP archive (no end-of-central-directory record)");

        std::uint64_t disk = u16(end + 4), cd_disk = u16(end + 6), count_disk = u16(end + 8), count = u16(end + 10);
        std::uint64_t cd_size = u32(end + 12), cd_offset = u32(end + 16);
        std::uint64_t cd_limit = end;  // the central directory must end before the next record

        const bool has_locator = end >= locator64_size && u32(end - locator64_size) == sig_locator64;
        if (has_locator) {
            const std::uint64_t loc = end - locator64_size;
            const std::uint64_t rec = u64(loc + 8);
            if (u32(loc + 4) != 0 || u32(loc + 16) > 1) fail("multi-volume ZIP archives are not supported");
            if (!fits(rec, end64_size, loc) || u32(rec) != sig_end64)
                fail("the ZIP64 end record the locator points to (offset ", rec, ") is missing or damaged");
            if (u64(rec + 4) < end64_size - 12) fail("the ZIP64 end record is shorter than its fixed fields");
            // A saturated 16/32-bit field means "see the ZIP64 record"; any other value must agree with it.
            const auto take = [&](std::uint64_t& field, std::uint64_t saturated, std::uint64_t value, const char* what) {
                if (field != saturated && field != value)
                    fail("the end record and the ZIP64 end record disagree on the ", what, " (", field, " vs ", value, ")");
                field = value;
            };
            take(disk, 0xFFFF, u32(rec + 16), "disk number");
            take(cd_disk, 0xFFFF, u32(rec + 20), "central directory disk");
            take(count_disk, 0xFFFF, u64(rec + 24), "entry count on this disk");
            take(count, 0xFFFF, u64(rec + 32), "entry count");
            take(cd_size, 0xFFFFFFFF, u64(rec + 40), "central directory size");
            take(cd_offset, 0xFFFFFFFF, u64(rec + 48), "central directory offset");
            cd_limit = rec;
        } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
            fail("the end record refers to a ZIP64 end record that is not there");
        }
        if (disk != 0 || cd_disk != 0 || count_disk != count) fail("multi-volume ZIP archives are not supported");
        if (!fits(cd_offset, cd_size, cd_limit))
            fail("the central directory [", cd_offset, ", +", cd_size, ") runs past the end records at ", cd_limit);
        if (count > cd_size / central_size)
            fail("the end record announces ", count, " entries, more than a ", cd_size, "-byte central directory holds");

        entries_.reserve(static_cast<std::size_t>(count));
        std::uint64_t at = cd_offset;
        const std::uint64_t cd_end = cd_offset + cd_size;
        for (std::uint64_t i = 0; i < count; ++i) {
            if (!fits(at, central_size, cd_end) || u32(at) != sig_central)
                fail("central directory entry ", i, " (offset ", at, ") is missing or damaged");
            const std::uint64_t name_len = u16(at + 28), extra_len = u16(at + 30), comment_len = u16(at + 32);
            if (!fits(at, central_size + name_len + extra_len + comment_len, cd_end))
                fail("central directory entry ", i, " runs past the directory");
            entries_.push_back(parse_entry(at, name_len, extra_len, cd_offset));
            at += central_size + name_len + extra_len + comment_len;
        }
        if (at != cd_end)
            fail("the central directory holds ", cd_end - at, " bytes after its ", count, " entries");
        check_no_overlap();
    }

    ZipEntry parse_entry(std::uint64_t at, std::uint64_t name_len, std::uint64_t extra_len, std::uint64_t data_limit) {
        ZipEntry e;
        e.name.assign(reinterpret_cast<const char*>(mapping_->data() + at + central_size), name_len);
        const std::string& n = e.name;
        if (n.empty()) fail("an entry has an empty name");
        if (n.find('\0') != std::string::npos) fail("an entry name contains a NUL byte");
        e.flags = u16(at + 8);
        e.method = u16(at + 10);
        e.crc32 = u32(at + 16);
        e.compressed_size = u32(at + 20);
        e.size = u32(at + 24);
        std::uint64_t disk = u16(at + 34);
        e.header_offset = u32(at + 42);
        if (e.flags & (flag_encrypted | flag_strong_encryption)) fail("entry \"", n, "\" is encrypted");

        // ZIP64 extended information: the 64-bit values of the fields saturated above, in this order.
        const std::uint64_t extra = at + central_size + name_len;
        for (std::uint64_t p = extra; p + 4 <= extra + extra_len;) {
            const std::uint16_t id = u16(p), len = u16(p + 2);
            if (p + 4 + len > extra + extra_len) fail("entry \"", n, "\": an extra field runs past its entry");
            if (id == 0x0001) {
                std::uint64_t q = p + 4;
                const std::uint64_t q_end = q + len;
                const auto take64 = [&](std::uint64_t& field) {
                    if (field != 0xFFFFFFFF) return;
                    if (q + 8 > q_end) fail("entry \"", n, "\": the ZIP64 extra field is too short");
                    field = u64(q);
                    q += 8;
                };
                take64(e.size);
                take64(e.compressed_size);
                take64(e.header_offset);
                if (disk == 0xFFFF) {
                    if (q + 4 > q_end) fail("entry \"", n, "\": the ZIP64 extra field is too short");
                    disk = u32(q);
                }
            }
            p += 4 + len;
        }
        if (e.size == 0xFFFFFFFF || e.compressed_size == 0xFFFFFFFF || e.header_offset == 0xFFFFFFFF)
            fail("entry \"", n, "\": a size or offset needs a ZIP64 extra field that is not there");
        if (disk != 0) fail("multi-volume ZIP archives are not supported");
        if (e.stored() && e.size != e.compressed_size)
            fail("entry \"", n, "\" is stored but its sizes differ (", e.compressed_size, " stored, ", e.size, " declared)");

        // The local header repeats the name (torch.save writes it identically); its extra field,
        // which torch.save uses as alignment padding, decides where the data starts.
        const std::uint64_t h = e.header_offset;
        if (!fits(h, local_size, data_limit) || u32(h) != sig_local)
            fail("entry \"", n, "\": no local header at offset ", h);
        const std::uint64_t local_name = u16(h + 26), local_extra = u16(h + 28);
        if (!fits(h, local_size + local_name + local_extra, data_limit))
            fail("entry \"", n, "\": the local header runs into the central directory");
        if (local_name != name_len ||
            std::memcmp(mapping_->data() + h + local_size, n.data(), static_cast<std::size_t>(name_len)) != 0)
            fail("entry \"", n, "\": the local header names another entry");
        e.data_offset = h + local_size + local_name + local_extra;
        if (!fits(e.data_offset, e.compressed_size, data_limit))
            fail("entry \"", n, "\": its ", e.compressed_size, " bytes at offset ", e.data_offset,
                 " run into the central directory at ", data_limit);
        if (!by_name_.emplace(n, entries_.size()).second) fail("the entry \"", n, "\" appears twice");
        return e;
    }

    // Entries sharing bytes would let one storage alias another (and are how "zip bombs" inflate).
    void check_no_overlap() const {
        std::vector<const ZipEntry*> order;
        for (const auto& e : entries_) order.push_back(&e);
        std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->header_offset < b->header_offset; });
        for (std::size_t i = 1; i < order.size(); ++i) {
            const ZipEntry& prev = *order[i - 1];
            if (order[i]->header_offset < prev.data_offset + prev.compressed_size)
                fail("entries \"", prev.name, "\" and \"", order[i]->name, "\" overlap");
        }
    }

    std::filesystem::path path_;
    std::shared_ptr<const FileMapping> mapping_;
    std::vector<ZipEntry> entries_;
    std::map<std::string, std::size_t> by_name_;
};

}  // namespace hyvideo
