#pragma once
// torch_pickle: the part of Python's pickle protocol that torch.save writes, read without running
// anything.
//
// A pickle is a program for a small stack machine; Python's unpickler runs it, and two of its
// instructions (GLOBAL, which imports any attribute of any module, and REDUCE, which calls it) are
// how a malicious .pt file executes code. This machine has the same instructions and semantics for
// the data torch.save produces (dicts and OrderedDicts, lists, tuples, strings, bytes, ints, floats,
// bools, None, memo references) but GLOBAL only resolves names on a fixed list, REDUCE only "calls"
// those by building a description of the result, and the storages that persistent_load would fetch
// are recorded by key. Everything else is refused with an error naming the byte offset and the
// opcode or global. The allowed names are what torch.save emits for state dicts:
//
//   collections.OrderedDict                  the state_dict container (plus its _metadata, via BUILD)
//   torch._utils._rebuild_tensor_v2 / _v3    a tensor as (storage, offset, size, stride, ...[, dtype])
//   torch._utils._rebuild_parameter[_with_state]  an nn.Parameter around such a tensor
//   torch.<T>Storage, torch.storage.UntypedStorage, torch.<dtype>   the element types of storages
//   torch.Size, _codecs.encode               tuples of sizes, and bytes in protocol 2
//
// This is the same list PyTorch's own weights_only unpickler allows for these objects. Nothing in
// this file opens files: the .pt reader (io/pt_file.hpp) resolves storages against the archive and
// validates every tensor's extent. The machine is iterative and every object it creates costs at
// least one input byte, so hostile input cannot recurse it or make it allocate beyond a small multiple
// of the pickle's size; fuzz/fuzz_torch_pickle.cpp checks that promise (docs/fuzzing.md).
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::pickle {

// An element type as a pickle names it: a typed storage class (rebuild v2) or a dtype (rebuild v3).
// Types hyvideo cannot hold are still listed, so that a checkpoint holding, say, a float64 counter
// opens, and the error comes only if that tensor is asked for.
struct TorchType {
    std::string_view storage_class;  // "BFloat16Storage"; empty where torch has no typed storage
    std::string_view name;           // torch's dtype name, "bfloat16"
    std::size_t size;                // bytes per element
    bool supported;
    DType dtype;  // meaningful when supported
};

inline constexpr std::array<TorchType, 19> torch_types{{
    {"FloatStorage", "float32", 4, true, DType::f32},
    {"HalfStorage", "float16", 2, true, DType::f16},
    {"BFloat16Storage", "bfloat16", 2, true, DType::bf16},
    {"", "float8_e4m3fn", 1, true, DType::f8e4m3},
    {"LongStorage", "int64", 8, true, DType::i64},
    {"BoolStorage", "bool", 1, true, DType::boolean},
    {"DoubleStorage", "float64", 8, false, DType::f32},
    {"IntStorage", "int32", 4, false, DType::f32},
    {"ShortStorage", "int16", 2, false, DType::f32},
    {"CharStorage", "int8", 1, false, DType::f32},
    {"ByteStorage", "uint8", 1, false, DType::f32},
    {"ComplexFloatStorage", "complex64", 8, false, DType::f32},
    {"ComplexDoubleStorage", "complex128", 16, false, DType::f32},
    {"", "float8_e5m2", 1, false, DType::f32},
    {"", "float8_e4m3fnuz", 1, false, DType::f32},
    {"", "float8_e5m2fnuz", 1, false, DType::f32},
    {"", "uint16", 2, false, DType::f32},
    {"", "uint32", 4, false, DType::f32},
    {"", "uint64", 8, false, DType::f32},
}};
// The storage type of rebuild v3 (torch.storage.UntypedStorage): bytes, typed by the rebuild's dtype.
inline constexpr std::size_t untyped_storage = torch_types.size();

using Ref = std::uint32_t;  // an object, by its index in the machine's object table

enum class Kind : std::uint8_t { none, boolean, integer, floating, string, bytes, tuple, list, dict, global, storage, tensor };

inline std::string_view kind_name(Kind k) {
    switch (k) {
        case Kind::none: return "None";
        case Kind::boolean: return "bool";
        case Kind::integer: return "int";
        case Kind::floating: return "float";
        case Kind::string: return "str";
        case Kind::bytes: return "bytes";
        case Kind::tuple: return "tuple";
        case Kind::list: return "list";
        case Kind::dict: return "dict";
        case Kind::global: return "global";
        case Kind::storage: return "storage";
        case Kind::tensor: return "tensor";
    }
    return "?";
}

// The names GLOBAL may resolve to.
enum class Global : std::uint8_t {
    ordered_dict,
    rebuild_tensor_v2,
    rebuild_tensor_v3,
    rebuild_parameter,
    rebuild_parameter_with_state,
    torch_size,
    codecs_encode,
    storage_type,  // `type` says which (an index into torch_types, or untyped_storage)
    dtype,         // `type` says which
};

// A storage as persistent_load describes it: ('storage', type, key, location, numel).
struct StorageRef {
    std::size_t type = 0;  // index into torch_types, or untyped_storage (numel is then in bytes)
    std::string key;       // the archive entry is <root>/data/<key>
    std::string location;  // "cpu", "cuda:0", ...: irrelevant here, everything is read to the CPU
    std::int64_t numel = 0;
};

// A tensor as _rebuild_tensor_v2/v3 describes it: a strided view of a storage.
struct TensorRef {
    Ref storage = 0;
    std::size_t type = 0;  // the element type: the storage's class (v2) or the explicit dtype (v3)
    std::int64_t offset = 0;
    Shape shape, stride;
};

struct Object {
    Kind kind = Kind::none;
    std::int64_t integer = 0;  // integer and boolean values; for global, storage and tensor: see below
    double floating = 0;
    std::string text;        // string and bytes values; for a global, "module.name"
    std::vector<Ref> items;  // tuple and list elements; for a dict, keys and values alternating
    Global global{};         // for a global
    std::size_t type = 0;    // for a global naming a type; storage/tensor: index into storages()/tensors()
    std::size_t at = 0;      // byte offset of the opcode that made it, for messages
};

// Runs a pickle; run() returns the object STOP leaves on the stack. `where` prefixes every message
// (the file and entry, e.g. "model.pt: data.pkl").
class Unpickler {
public:
    Unpickler(std::span<const std::byte> bytes, std::string where) : in_(bytes), where_(std::move(where)) {}

    Ref run() {
        while (true) {
            op_at_ = pos_;
            const std::uint8_t op = u8();
            switch (op) {
                case 0x80: {  // PROTO
                    const std::uint8_t v = u8();
                    if (v > 5) fail("pickle protocol ", int{v}, " is newer than any this reader knows (5)");
                    break;
                }
                case 0x95: {  // FRAME: a length hint of protocol 4; the bytes that follow are ordinary opcodes
                    const std::uint64_t n = uint_le(8);
                    if (n > remaining()) fail("FRAME of ", n, " bytes runs past the end of the pickle");
                    break;
                }
                case '.': return stop();
                case '(': marks_.push_back(stack_.size()); break;       // MARK
                case '0':                                               // POP
                    if (stack_.size() > floor()) stack_.pop_back();
                    else pop_mark();
                    break;
                case '1': pop_mark(); break;                            // POP_MARK
                case '2': push(top()); break;                           // DUP
                case 'N': push(make(Kind::none)); break;                // NONE
                case 0x88: push(make_bool(true)); break;                // NEWTRUE
                case 0x89: push(make_bool(false)); break;               // NEWFALSE
                case 'J': push(make_int(static_cast<std::int32_t>(uint_le(4)))); break;  // BININT
                case 'K': push(make_int(static_cast<std::int64_t>(uint_le(1)))); break;  // BININT1
                case 'M': push(make_int(static_cast<std::int64_t>(uint_le(2)))); break;  // BININT2
                case 0x8a: push(make_int(long_bytes(uint_le(1)))); break;                // LONG1
                case 0x8b: {                                                             // LONG4
                    const auto n = static_cast<std::int32_t>(uint_le(4));
                    if (n < 0) fail("LONG4 with a negative length");
                    push(make_int(long_bytes(static_cast<std::uint64_t>(n))));
                    break;
                }
                case 'G': {  // BINFLOAT: big-endian IEEE double
                    std::uint64_t bits = 0;
                    for (std::uint8_t b : take(8)) bits = bits << 8 | b;
                    Ref r = make(Kind::floating);
                    objects_[r].floating = std::bit_cast<double>(bits);
                    push(r);
                    break;
                }
                case 'X': push(make_text(Kind::string, uint_le(4))); break;   // BINUNICODE
                case 0x8c: push(make_text(Kind::string, uint_le(1))); break;  // SHORT_BINUNICODE
                case 0x8d: push(make_text(Kind::string, uint_le(8))); break;  // BINUNICODE8
                case 'T': push(make_text(Kind::string, binstring_len())); break;  // BINSTRING (protocol 1 str)
                case 'U': push(make_text(Kind::string, uint_le(1))); break;       // SHORT_BINSTRING
                case 'B': push(make_text(Kind::bytes, uint_le(4))); break;        // BINBYTES
                case 'C': push(make_text(Kind::bytes, uint_le(1))); break;        // SHORT_BINBYTES
                case 0x8e: push(make_text(Kind::bytes, uint_le(8))); break;       // BINBYTES8
                case ')': push(make(Kind::tuple)); break;                         // EMPTY_TUPLE
                case 't': push(make_seq(Kind::tuple, pop_mark())); break;         // TUPLE
                case 0x85: push(make_seq(Kind::tuple, pop_n(1))); break;          // TUPLE1
                case 0x86: push(make_seq(Kind::tuple, pop_n(2))); break;          // TUPLE2
                case 0x87: push(make_seq(Kind::tuple, pop_n(3))); break;          // TUPLE3
                case ']': push(make(Kind::list)); break;                          // EMPTY_LIST
                case 'l': push(make_seq(Kind::list, pop_mark())); break;          // LIST
                case 'a': {                                                       // APPEND
                    const Ref v = pop();
                    expect(top(), Kind::list, "APPEND").items.push_back(v);
                    break;
                }
                case 'e': {  // APPENDS
                    auto vs = pop_mark();
                    auto& items = expect(top(), Kind::list, "APPENDS").items;
                    items.insert(items.end(), vs.begin(), vs.end());
                    break;
                }
                case '}': push(make(Kind::dict)); break;  // EMPTY_DICT
                case 'd': {                               // DICT
                    auto kv = pop_mark();
                    const Ref d = make(Kind::dict);
                    set_items(d, kv);
                    push(d);
                    break;
                }
                case 's': {  // SETITEM
                    const Ref v = pop(), k = pop();
                    set_item(top_dict("SETITEM"), k, v);
                    break;
                }
                case 'u': {  // SETITEMS
                    auto kv = pop_mark();
                    set_items(top_dict("SETITEMS"), kv);
                    break;
                }
                case 'c': {  // GLOBAL: "module\nname\n"
                    std::string module = line(), name = line();
                    push(make_global(module, name));
                    break;
                }
                case 0x93: {  // STACK_GLOBAL
                    const Ref name = pop(), module = pop();
                    push(make_global(expect(module, Kind::string, "STACK_GLOBAL").text,
                                     expect(name, Kind::string, "STACK_GLOBAL").text));
                    break;
                }
                case 'R': {  // REDUCE
                    const Ref args = pop(), fn = pop();
                    push(reduce(fn, args));
                    break;
                }
                case 'Q': push(persistent_load(pop())); break;  // BINPERSID
                case 'b': build(); break;                       // BUILD
                case 'q': memo_put(uint_le(1)); break;          // BINPUT
                case 'r': memo_put(uint_le(4)); break;          // LONG_BINPUT
                case 0x94: memo_put(memo_.size()); break;       // MEMOIZE
                case 'h': push(memo_get(uint_le(1))); break;    // BINGET
                case 'j': push(memo_get(uint_le(4))); break;    // LONG_BINGET
                default: fail("opcode ", opcode_name(op), " is not part of what torch.save writes; refusing it");
            }
        }
    }

    const Object& at(Ref r) const { return objects_.at(r); }
    std::size_t object_count() const { return objects_.size(); }
    const std::vector<StorageRef>& storages() const { return storages_; }
    const std::vector<TensorRef>& tensors() const { return tensors_; }
    const std::string& where() const { return where_; }

private:
    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        throw Error(detail::concat(where_, ": byte ", op_at_, ": ", std::forward<Args>(args)...));
    }

    static std::string opcode_name(std::uint8_t op) {
        static constexpr std::pair<std::uint8_t, const char*> names[] = {
            {'I', "INT"},       {'L', "LONG"},        {'F', "FLOAT"},        {'S', "STRING"}, {'V', "UNICODE"},
            {'P', "PERSID"},    {'g', "GET"},         {'p', "PUT"},          {'i', "INST"},   {'o', "OBJ"},
            {0x81, "NEWOBJ"},   {0x92, "NEWOBJ_EX"},  {0x82, "EXT1"},        {0x83, "EXT2"},  {0x84, "EXT4"},
            {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"},  {0x91, "FROZENSET"},   {0x96, "BYTEARRAY8"},
            {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}};
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        for (auto& [code, name] : names)
            if (code == op) return std::string(name) + " (" + hex + ")";
        return hex;
    }

    // ---- input ------------------------------------------------------------------------------------
    std::uint64_t remaining() const { return in_.size() - pos_; }
    std::span<const std::uint8_t> take(std::uint64_t n) {
        if (n > remaining()) fail("a ", n, "-byte argument runs past the end of the pickle (", remaining(), " left)");
        const auto* p = reinterpret_cast<const std::uint8_t*>(in_.data() + pos_);
        pos_ += static_cast<std::size_t>(n);
        return {p, static_cast<std::size_t>(n)};
    }
    std::uint8_t u8() { return take(1)[0]; }
    std::uint64_t uint_le(int n) {
        std::uint64_t v = 0;
        const auto b = take(static_cast<std::uint64_t>(n));
        for (int i = n; i-- > 0;) v = v << 8 | b[static_cast<std::size_t>(i)];
        return v;
    }
    std::uint64_t binstring_len() {
        const auto n = static_cast<std::int32_t>(uint_le(4));
        if (n < 0) fail("BINSTRING with a negative length");
        return static_cast<std::uint64_t>(n);
    }
    // Python's encode_long: n bytes, little-endian two's complement, as short as the value allows.
    std::int64_t long_bytes(std::uint64_t n) {
        if (n > 8) fail("an integer of ", n, " bytes does not fit in 64 bits");
        const auto b = take(n);
        std::uint64_t v = 0;
        for (std::size_t i = n; i-- > 0;) v = v << 8 | b[i];
        if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
        return static_cast<std::int64_t>(v);
    }
    std::string line() {
        const auto* p = reinterpret_cast<const char*>(in_.data() + pos_);
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(remaining())));
        if (nl == nullptr) fail("GLOBAL without its terminating newline");
        std::string s(p, nl);
        pos_ += s.size() + 1;
        return s;
    }

    // ---- objects and stack ------------------------------------------------------------------------
    Ref make(Kind k) {
        if (objects_.size() >= std::numeric_limits<Ref>::max()) fail("too many objects");
        objects_.push_back({});
        objects_.back().kind = k;
        objects_.back().at = op_at_;
        return static_cast<Ref>(objects_.size() - 1);
    }
    Ref make_bool(bool b) {
        const Ref r = make(Kind::boolean);
        objects_[r].integer = b;
        return r;
    }
    Ref make_int(std::int64_t v) {
        const Ref r = make(Kind::integer);
        objects_[r].integer = v;
        return r;
    }
    Ref make_text(Kind k, std::uint64_t n) {
        const auto b = take(n);
        std::string s(reinterpret_cast<const char*>(b.data()), b.size());
        // Names become safetensors headers and JSON, which must be UTF-8; Python would refuse these too.
        if (k == Kind::string && !valid_utf8(s)) fail("a string that is not valid UTF-8");
        const Ref r = make(k);
        objects_[r].text = std::move(s);
        return r;
    }
    Ref make_seq(Kind k, std::vector<Ref> items) {
        const Ref r = make(k);
        objects_[r].items = std::move(items);
        return r;
    }

    std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    void push(Ref r) { stack_.push_back(r); }
    Ref top() const {
        if (stack_.size() <= floor()) fail("the stack is empty");
        return stack_.back();
    }
    Ref pop() {
        const Ref r = top();
        stack_.pop_back();
        return r;
    }
    std::vector<Ref> pop_n(std::size_t n) {
        if (stack_.size() - floor() < n) fail("the stack holds fewer than ", n, " items");
        std::vector<Ref> v(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        return v;
    }
    std::vector<Ref> pop_mark() {
        if (marks_.empty()) fail("no MARK to pop to");
        std::vector<Ref> v(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
        stack_.resize(marks_.back());
        marks_.pop_back();
        return v;
    }
    Object& expect(Ref r, Kind k, const char* what) {
        if (objects_[r].kind != k)
            fail(what, " needs a ", kind_name(k), ", got a ", kind_name(objects_[r].kind));
        return objects_[r];
    }
    Ref top_dict(const char* what) {
        const Ref d = top();
        expect(d, Kind::dict, what);
        return d;
    }

    void memo_put(std::uint64_t index) {
        if (index > std::numeric_limits<std::uint32_t>::max()) fail("memo index out of range");
        memo_[static_cast<std::uint32_t>(index)] = top();
    }
    Ref memo_get(std::uint64_t index) const {
        const auto it = memo_.find(static_cast<std::uint32_t>(index));
        if (index > std::numeric_limits<std::uint32_t>::max() || it == memo_.end())
            fail("memo entry ", index, " was never stored");
        return it->second;
    }

    // Dict keys compare by value, as Python's do (True == 1 included). Containers are not hashable in
    // Python and floats never key a state dict, so both are refused.
    std::string key_of(Ref k) const {
        const Object& o = objects_[k];
        switch (o.kind) {
            case Kind::string: return "s" + o.text;
            case Kind::bytes: return "b" + o.text;
            case Kind::integer:
            case Kind::boolean: return "i" + std::to_string(o.integer);
            case Kind::none: return "n";
            default: fail("a dict key of type ", kind_name(o.kind), " is not supported");
        }
    }
    void set_item(Ref d, Ref k, Ref v) {
        auto& index = dict_keys_[d];
        const auto [it, fresh] = index.emplace(key_of(k), objects_[d].items.size());
        if (fresh) {
            objects_[d].items.push_back(k);
            objects_[d].items.push_back(v);
        } else {
            objects_[d].items[it->second + 1] = v;  // a repeated key replaces the value, as in Python
        }
    }
    void set_items(Ref d, const std::vector<Ref>& kv) {
        if (kv.size() % 2 != 0) fail("an odd number of items for a dict");
        for (std::size_t i = 0; i < kv.size(); i += 2) set_item(d, kv[i], kv[i + 1]);
    }

    Ref stop() {
        if (!marks_.empty()) fail("STOP with an unclosed MARK");
        if (stack_.size() != 1) fail("STOP with ", stack_.size(), " objects on the stack instead of one");
        if (remaining() != 0) fail(remaining(), " bytes follow STOP");
        return stack_.back();
    }

    // ---- globals, calls, storages -------------------------------------------------------------------
    Ref make_global(const std::string& module, const std::string& name) {
        Global g{};
        std::size_t type = 0;
        bool ok = true;
        if (module == "collections" && name == "OrderedDict") g = Global::ordered_dict;
        else if (module == "torch._utils" && name == "_rebuild_tensor_v2") g = Global::rebuild_tensor_v2;
        else if (module == "torch._utils" && name == "_rebuild_tensor_v3") g = Global::rebuild_tensor_v3;
        else if (module == "torch._utils" && name == "_rebuild_parameter") g = Global::rebuild_parameter;
        else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") g = Global::rebuild_parameter_with_state;
        else if (module == "torch" && name == "Size") g = Global::torch_size;
        else if (module == "_codecs" && name == "encode") g = Global::codecs_encode;
        else if ((module == "torch.storage" || module == "torch") && name == "UntypedStorage") {
            g = Global::storage_type;
            type = untyped_storage;
        } else if (module == "torch" && find_type(name, &TorchType::storage_class, type)) {
            g = Global::storage_type;
        } else if (module == "torch" && find_type(name, &TorchType::name, type)) {
            g = Global::dtype;
        } else {
            ok = false;
        }
        if (!ok)
            fail("refusing the global '", module, ".", name,
                 "': a checkpoint pickle may only name tensor-rebuilding functions, storage and dtype types, "
                 "OrderedDict, torch.Size and _codecs.encode (hyvideo reads data and never runs code from a file)");
        const Ref r = make(Kind::global);
        objects_[r].global = g;
        objects_[r].type = type;
        objects_[r].text = module + "." + name;
        return r;
    }
    static bool find_type(const std::string& name, std::string_view TorchType::*field, std::size_t& index) {
        for (std::size_t i = 0; i < torch_types.size(); ++i)
            if (!(torch_types[i].*field).empty() && torch_types[i].*field == name) {
                index = i;
                return true;
            }
        return false;
    }

    std::int64_t int_arg(Ref r, const char* what) {
        const Object& o = objects_[r];
        if (o.kind != Kind::integer) fail(what, " must be an int, got a ", kind_name(o.kind));
        return o.integer;
    }
    Shape int_tuple(Ref r, const char* what) {
        const Object& o = objects_[r];
        if (o.kind != Kind::tuple) fail(what, " must be a tuple, got a ", kind_name(o.kind));
        // No tensor has more dimensions than this; the bound keeps hostile shapes small.
        if (o.items.size() > 64) fail(what, " has ", o.items.size(), " dimensions (at most 64)");
        Shape s;
        for (Ref i : o.items) {
            const std::int64_t v = int_arg(i, what);
            if (v < 0) fail(what, " holds the negative value ", v);
            s.push_back(v);
        }
        return s;
    }

    Ref reduce(Ref fn, Ref args_ref) {
        const Object& f = expect(fn, Kind::global, "REDUCE");
        const std::vector<Ref> args = expect(args_ref, Kind::tuple, "REDUCE").items;
        const auto arity = [&](std::size_t lo, std::size_t hi) {
            if (args.size() < lo || args.size() > hi)
                fail(f.text, " called with ", args.size(), " arguments (expected ", lo,
                     lo == hi ? "" : detail::concat("-", hi), ")");
        };
        switch (f.global) {
            case Global::ordered_dict:
                arity(0, 0);  // torch.save pickles OrderedDict(), then fills it with SETITEMS
                return make(Kind::dict);
            case Global::torch_size: {
                arity(1, 1);
                int_tuple(args[0], "torch.Size");  // validates: non-negative ints
                return make_seq(Kind::tuple, objects_[args[0]].items);
            }
            case Global::codecs_encode: {
                // Protocol 2 pickles bytes as _codecs.encode(str, 'latin1'): each code point is one byte.
                arity(2, 2);
                const std::string& enc = expect(args[1], Kind::string, "_codecs.encode's encoding").text;
                if (enc != "latin1" && enc != "latin-1") fail("_codecs.encode with the encoding '", enc, "'");
                std::string out;
                const std::string& s = expect(args[0], Kind::string, "_codecs.encode").text;
                for (std::size_t i = 0; i < s.size(); ++i) {
                    const auto c = static_cast<unsigned char>(s[i]);
                    if (c < 0x80) {
                        out += static_cast<char>(c);
                    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s.size()) {  // U+0080..U+00FF
                        out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
                    } else {
                        fail("_codecs.encode of a character outside latin-1");
                    }
                }
                const Ref r = make(Kind::bytes);
                objects_[r].text = std::move(out);
                return r;
            }
            case Global::rebuild_parameter:
            case Global::rebuild_parameter_with_state: {
                // (data, requires_grad, backward_hooks[, state]): the parameter is its data here.
                if (f.global == Global::rebuild_parameter) arity(3, 3);
                else arity(4, 4);
                expect(args[0], Kind::tensor, "_rebuild_parameter's data");
                expect(args[1], Kind::boolean, "_rebuild_parameter's requires_grad");
                expect(args[2], Kind::dict, "_rebuild_parameter's backward_hooks");
                if (args.size() == 4 && objects_[args[3]].kind != Kind::dict && objects_[args[3]].kind != Kind::none)
                    fail("_rebuild_parameter_with_state's state must be a dict or None");
                return args[0];
            }
            case Global::rebuild_tensor_v2:
            case Global::rebuild_tensor_v3: {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks, [dtype (v3),] [metadata])
                const bool v3 = f.global == Global::rebuild_tensor_v3;
                arity(v3 ? 7 : 6, v3 ? 8 : 7);
                TensorRef t;
                t.storage = args[0];
                const StorageRef& s = storages_[expect(args[0], Kind::storage, "the tensor's storage").type];
                t.offset = int_arg(args[1], "the storage offset");
                if (t.offset < 0) fail("a negative storage offset");
                t.shape = int_tuple(args[2], "the size");
                t.stride = int_tuple(args[3], "the stride");
                if (t.shape.size() != t.stride.size())
                    fail("the size has ", t.shape.size(), " dimensions and the stride ", t.stride.size());
                expect(args[4], Kind::boolean, "requires_grad");
                expect(args[5], Kind::dict, "backward_hooks");
                if (v3) {
                    const Object& d = expect(args[6], Kind::global, "the dtype");
                    if (d.global != Global::dtype) fail("the dtype is ", d.text, ", not a torch dtype");
                    t.type = d.type;
                } else {
                    if (s.type == untyped_storage) fail("_rebuild_tensor_v2 on an untyped storage (no dtype)");
                    t.type = s.type;
                }
                const std::size_t meta = v3 ? 7 : 6;
                if (args.size() > meta && objects_[args[meta]].kind != Kind::dict && objects_[args[meta]].kind != Kind::none)
                    fail("the tensor metadata must be a dict or None");
                const Ref r = make(Kind::tensor);
                objects_[r].type = tensors_.size();
                tensors_.push_back(std::move(t));
                return r;
            }
            case Global::storage_type:
            case Global::dtype: fail(f.text, " is a type, and is not called by torch.save pickles");
        }
        fail("unreachable");
    }

    // torch.save's persistent id of a storage: ('storage', storage type, key, location, numel).
    Ref persistent_load(Ref pid) {
        const auto& items = expect(pid, Kind::tuple, "a persistent id").items;
        if (items.size() != 5 || objects_[items[0]].kind != Kind::string || objects_[items[0]].text != "storage")
            fail("a persistent id that is not ('storage', type, key, location, numel)");
        const Object& type = expect(items[1], Kind::global, "the storage type");
        if (type.global != Global::storage_type) fail("the storage type is ", type.text, ", not a storage class");
        StorageRef s;
        s.type = type.type;
        s.key = expect(items[2], Kind::string, "the storage key").text;
        s.location = expect(items[3], Kind::string, "the storage location").text;
        s.numel = int_arg(items[4], "the storage size");
        if (s.numel < 0) fail("a storage of negative size");
        const Ref r = make(Kind::storage);
        objects_[r].type = storages_.size();
        storages_.push_back(std::move(s));
        return r;
    }

    // BUILD sets an object's state. torch.save produces it only for an OrderedDict's attributes
    // (a state_dict's `_metadata`), which carry nothing a reader of weights needs.
    void build() {
        const Ref state = pop();
        const Object& target = objects_[top()];
        const Kind sk = objects_[state].kind;
        if (target.kind != Kind::dict || (sk != Kind::dict && sk != Kind::none))
            fail("BUILD of a ", kind_name(target.kind), " with a ", kind_name(sk),
                 " (only a dict's attributes, as torch.save writes a state_dict's _metadata)");
    }

    // Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
    static bool valid_utf8(std::string_view s) {
        for (std::size_t i = 0; i < s.size();) {
            const auto c = static_cast<unsigned char>(s[i]);
            std::size_t n;
            std::uint32_t cp;
            if (c < 0x80) { ++i; continue; }
            if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
            else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
            else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
            else return false;
            if (i + n >= s.size()) return false;  // the continuation bytes are s[i+1 .. i+n]
            for (std::size_t k = 1; k <= n; ++k) {
                const auto d = static_cast<unsigned char>(s[i + k]);
                if ((d & 0xC0) != 0x80) return false;
                cp = cp << 6 | (d & 0x3F);
            }
            if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
                return false;
            i += n + 1;
        }
        return true;
    }

    std::span<const std::byte> in_;
    std::string where_;
    std::size_t pos_ = 0;
    std::size_t op_at_ = 0;
    std::vector<Object> objects_;
    std::vector<Ref> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<std::uint32_t, Ref> memo_;
    std::unordered_map<Ref, std::unordered_map<std::string, std::size_t>> dict_keys_;
    std::vector<StorageRef> storages_;
    std::vector<TensorRef> tensors_;
};

}  // namespace hyvideo::pickle
