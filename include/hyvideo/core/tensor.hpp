#pragma once
// Tensor: a strided n-d view of typed memory on one device.
//
// A Tensor is a cheap handle: copying it shares the memory (like torch.Tensor). The memory is kept
// alive by a type-erased owner, so the same type covers memory the toolkit allocated, memory-mapped
// weight files (zero-copy views into the mapping) and device memory of the CUDA backend. Strides are
// in elements; rearrangements (permute, slice, select, reshape, unsqueeze) are views, on any device.
//
// Memory is the backend's: components allocate through B::empty / zeros / full / upload, which wrap()
// what the backend allocated with its device and index. Tensor's own factories (empty, zeros, full,
// from_vector) make host tensors, and the copies (contiguous, clone, to, copy_to) are host operations
// that refuse a device tensor rather than copy it behind the caller's back; on a device, B::contiguous
// and B::cast do that work.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <numeric>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/host_allocator.hpp"

namespace hyvideo {

// The kind of memory a tensor lives in; Tensor::device_index() says which one of that kind (a GPU's
// ordinal; 0 for the host). `omp` is the memory of the thrust-omp backend: host RAM, but a device to
// the toolkit, so every host operation refuses it as it would refuse a GPU's memory, and a component
// that passes its tests there touches its tensors only through the backend.
enum class Device : std::uint8_t { cpu, cuda, omp };

inline std::string_view device_name(Device d) {
    return d == Device::cpu ? "cpu" : d == Device::cuda ? "cuda" : "omp";
}

using Shape = std::vector<std::int64_t>;

inline std::int64_t shape_numel(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

inline std::string shape_str(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

inline Shape contiguous_strides(const Shape& s) {
    Shape st(s.size());
    std::int64_t acc = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
        st[i] = acc;
        acc *= s[i];
    }
    return st;
}

class Tensor {
public:
    Tensor() = default;

    // Uninitialised CPU memory. Backends create device tensors through wrap().
    static Tensor empty(Shape shape, DType dtype = DType::f32) {
        for (auto d : shape) HYVIDEO_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
        const auto nbytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
        auto mem = allocate_host(nbytes);  // core/host_allocator.hpp
        return wrap(mem, mem.get(), std::move(shape), dtype, Device::cpu);
    }
    static Tensor zeros(Shape shape, DType dtype = DType::f32) {
        Tensor t = empty(std::move(shape), dtype);
        std::memset(t.raw_data(), 0, t.nbytes());
        return t;
    }
    static Tensor full(Shape shape, float value) {
        Tensor t = empty(std::move(shape), DType::f32);
        std::fill_n(t.data<float>(), t.numel(), value);
        return t;
    }
    template <class T>
    static Tensor from_vector(Shape shape, const std::vector<T>& values) {
        HYVIDEO_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape), "from_vector: ",
                      values.size(), " values for shape ", shape_str(shape));
        Tensor t = empty(std::move(shape), dtype_of_v<T>);
        if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
        return t;
    }

    // A contiguous view of memory owned by `owner` (a file mapping, a device allocation, ...) on device
    // `device` number `index`.
    static Tensor wrap(std::shared_ptr<const void> owner, const void* data, Shape shape, DType dtype,
                       Device device = Device::cpu, int index = 0) {
        HYVIDEO_CHECK(index >= 0 && (device != Device::cpu || index == 0), "wrap: device index ", index, " for ",
                      device_name(device));
        Tensor t;
        t.owner_ = std::move(owner);
        t.data_ = static_cast<std::byte*>(const_cast<void*>(data));
        t.strides_ = contiguous_strides(shape);
        t.shape_ = std::move(shape);
        t.dtype_ = dtype;
        t.device_ = device;
        t.device_index_ = index;
        return t;
    }

    // The same view labelled as memory of another kind: only for a backend whose device memory is host
    // memory (thrust-omp), to hand its tensors to the CPU kernels and take their results back.
    Tensor relabelled(Device device, int index = 0) const {
        HYVIDEO_CHECK(device != Device::cuda && device_ != Device::cuda, "relabelled: CUDA memory is not host memory");
        Tensor t = *this;
        t.device_ = device;
        t.device_index_ = index;
        return t;
    }

    bool defined() const { return owner_ != nullptr; }
    DType dtype() const { return dtype_; }
    Device device() const { return device_; }
    int device_index() const { return device_index_; }
    const Shape& shape() const { return shape_; }
    const Shape& strides() const { return strides_; }
    std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
    std::int64_t size(std::int64_t d) const { return shape_[wrap_dim(d)]; }
    std::int64_t stride(std::int64_t d) const { return strides_[wrap_dim(d)]; }
    std::int64_t numel() const { return shape_numel(shape_); }
    std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
    const std::shared_ptr<const void>& owner() const { return owner_; }

    bool is_contiguous() const {
        std::int64_t expected = 1;
        for (std::size_t i = shape_.size(); i-- > 0;) {
            if (shape_[i] != 1 && strides_[i] != expected) return false;
            expected *= shape_[i];
        }
        return true;
    }

    void* raw_data() const { return data_; }
    template <class T>
    T* data() const {
        HYVIDEO_CHECK(dtype_of_v<std::remove_const_t<T>> == dtype_, "tensor holds ", dtype_name(dtype_),
                      ", accessed as ", dtype_name(dtype_of_v<std::remove_const_t<T>>));
        return reinterpret_cast<T*>(data_);
    }
    // Contiguous host data as a span; the common way kernels and tests read a tensor.
    template <class T>
    std::span<T> span() const {
        HYVIDEO_CHECK(is_contiguous(), "span() needs a contiguous tensor, shape ", shape_str(shape_));
        HYVIDEO_CHECK(device_ == Device::cpu, "span() needs a CPU tensor");
        return {data<T>(), static_cast<std::size_t>(numel())};
    }

    // ---- views -------------------------------------------------------------------------------
    // The same elements in row-major order under `shape` (one -1 is inferred), always as a view: no
    // data moves, on any device. Splitting a dimension, or merging dimensions whose strides still
    // chain, is a view of a strided tensor too; merging dimensions that a permute or a slice separated
    // is not, and throws: materialise first (B::contiguous, or contiguous() on the host), so that every
    // copy is visible where it happens.
    Tensor reshape(Shape shape) const {
        std::int64_t known = 1, infer = -1;
        for (std::size_t i = 0; i < shape.size(); ++i) {
            if (shape[i] == -1) {
                HYVIDEO_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
                infer = static_cast<std::int64_t>(i);
            } else {
                known *= shape[i];
            }
        }
        if (infer >= 0) {
            HYVIDEO_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer ", shape_str(shape),
                          " from ", shape_str(shape_));
            shape[infer] = numel() / known;
        }
        HYVIDEO_CHECK(shape_numel(shape) == numel(), "reshape: ", shape_str(shape_), " has ", numel(),
                      " elements, not ", shape_numel(shape), " of ", shape_str(shape));
        const std::optional<Shape> strides = view_strides(shape);
        HYVIDEO_CHECK(strides, "reshape: a strided view ", shape_str(shape_), " (strides ", shape_str(strides_),
                      ") cannot be viewed as ", shape_str(shape), " without a copy; make it contiguous first");
        Tensor t = *this;
        t.strides_ = *strides;
        t.shape_ = std::move(shape);
        return t;
    }
    Tensor flatten() const { return reshape({numel()}); }

    Tensor slice(std::int64_t d, std::int64_t start, std::int64_t end) const {
        d = wrap_dim(d);
        HYVIDEO_CHECK(0 <= start && start <= end && end <= shape_[d], "slice [", start, ", ", end,
                      ") out of range for dim ", d, " of ", shape_str(shape_));
        Tensor t = *this;
        t.data_ += start * strides_[d] * static_cast<std::int64_t>(dtype_size(dtype_));
        t.shape_[d] = end - start;
        return t;
    }
    Tensor select(std::int64_t d, std::int64_t i) const {
        d = wrap_dim(d);
        HYVIDEO_CHECK(0 <= i && i < shape_[d], "select ", i, " out of range for dim ", d, " of ",
                      shape_str(shape_));
        Tensor t = slice(d, i, i + 1);
        t.shape_.erase(t.shape_.begin() + d);
        t.strides_.erase(t.strides_.begin() + d);
        return t;
    }
    Tensor permute(const std::vector<std::int64_t>& order) const {
        HYVIDEO_CHECK(order.size() == shape_.size(), "permute: ", order.size(), " dims for ",
                      shape_str(shape_));
        Tensor t = *this;
        std::vector<bool> seen(order.size());
        for (std::size_t i = 0; i < order.size(); ++i) {
            const auto o = wrap_dim(order[i]);
            HYVIDEO_CHECK(!seen[o], "permute: repeated dim ", o);
            seen[o] = true;
            t.shape_[i] = shape_[o];
            t.strides_[i] = strides_[o];
        }
        return t;
    }
    Tensor transpose(std::int64_t a, std::int64_t b) const {
        std::vector<std::int64_t> order(shape_.size());
        std::iota(order.begin(), order.end(), 0);
        std::swap(order[wrap_dim(a)], order[wrap_dim(b)]);
        return permute(order);
    }
    Tensor unsqueeze(std::int64_t d) const {
        if (d < 0) d += dim() + 1;
        HYVIDEO_CHECK(0 <= d && d <= dim(), "unsqueeze: dim ", d, " for ", shape_str(shape_));
        Tensor t = *this;
        const std::int64_t st = d < dim() ? strides_[d] * shape_[d] : 1;
        t.shape_.insert(t.shape_.begin() + d, 1);
        t.strides_.insert(t.strides_.begin() + d, st);
        return t;
    }

    // ---- copies (CPU; device tensors go through their backend) ------------------------------
    // A contiguous copy if the tensor is strided, else the tensor itself.
    Tensor contiguous() const {
        if (is_contiguous()) return *this;
        require_cpu("contiguous");
        Tensor out = empty(shape_, dtype_);
        copy_strided(*this, out);
        return out;
    }
    Tensor clone() const {
        require_cpu("clone");
        Tensor out = empty(shape_, dtype_);
        copy_strided(*this, out);
        return out;
    }
    // Element-type conversion with PyTorch's rounding (dtype_convert.hpp). Returns a new tensor.
    Tensor to(DType dtype) const {
        require_cpu("to(dtype)");
        if (dtype == dtype_) return clone();
        Tensor src = contiguous();
        Tensor out = empty(shape_, dtype);
        convert_buffer(src.raw_data(), dtype_, out.raw_data(), dtype, static_cast<std::size_t>(numel()));
        return out;
    }
    // Copy of the values into `dst` (same shape; dtype converted if it differs).
    void copy_to(Tensor& dst) const {
        HYVIDEO_CHECK(dst.shape_ == shape_, "copy_to: shape ", shape_str(shape_), " into ",
                      shape_str(dst.shape_));
        require_cpu("copy_to");
        dst.require_cpu("copy_to");
        if (dst.dtype_ == dtype_) {
            copy_strided(*this, dst);
        } else {
            Tensor conv = to(dst.dtype_);
            copy_strided(conv, dst);
        }
    }

    // Values as float, for tests and small host-side computations.
    std::vector<float> to_vector() const {
        Tensor f = dtype_ == DType::f32 ? contiguous() : to(DType::f32);
        auto s = f.span<const float>();
        return {s.begin(), s.end()};
    }
    // Element at a multi-index as float (slow; for tests and messages).
    float item(std::initializer_list<std::int64_t> idx = {}) const {
        require_cpu("item");
        HYVIDEO_CHECK(static_cast<std::int64_t>(idx.size()) == dim(), "item: ", idx.size(),
                      " indices for ", shape_str(shape_));
        std::int64_t off = 0, d = 0;
        for (auto i : idx) {
            HYVIDEO_CHECK(0 <= i && i < shape_[d], "item: index ", i, " out of range for dim ", d);
            off += i * strides_[d++];
        }
        float v = 0;
        convert_buffer(data_ + off * static_cast<std::int64_t>(dtype_size(dtype_)), dtype_, &v, DType::f32, 1);
        return v;
    }

private:
    // Strides under which `shape` views this tensor's elements in row-major order, if any. Runs of
    // old dimensions that are contiguous with each other (stride[d-1] == stride[d] * size[d]) behave as
    // one block; each block must be covered exactly by consecutive new dimensions.
    std::optional<Shape> view_strides(const Shape& shape) const {
        if (numel() == 0 || shape_.empty()) return contiguous_strides(shape);
        Shape out(shape.size(), 1);
        std::int64_t view_d = static_cast<std::int64_t>(shape.size()) - 1;
        std::int64_t base = strides_.back(), old_count = 1, new_count = 1;
        for (std::int64_t d = static_cast<std::int64_t>(shape_.size()) - 1; d >= 0; --d) {
            old_count *= shape_[d];
            const bool block_ends = d == 0 || (shape_[d - 1] != 1 && strides_[d - 1] != old_count * base);
            if (!block_ends) continue;
            while (view_d >= 0 && (new_count < old_count || shape[view_d] == 1)) {
                out[view_d] = new_count * base;
                new_count *= shape[view_d];
                --view_d;
            }
            if (new_count != old_count) return std::nullopt;
            if (d > 0) {
                base = strides_[d - 1];
                old_count = new_count = 1;
            }
        }
        if (view_d != -1) return std::nullopt;
        return out;
    }

    std::int64_t wrap_dim(std::int64_t d) const {
        const auto n = dim();
        const auto w = d < 0 ? d + n : d;
        HYVIDEO_CHECK(0 <= w && w < n, "dim ", d, " out of range for ", shape_str(shape_));
        return w;
    }
    void require_cpu(const char* what) const {
        HYVIDEO_CHECK(device_ == Device::cpu, what, " on a ", device_name(device_),
                      " tensor: use the backend's copy");
    }
    // Copies src into dst of the same shape and dtype, walking both with their own strides. The
    // innermost dimension is copied as a run when both are unit-stride there.
    static void copy_strided(const Tensor& src, Tensor& dst) {
        const auto esz = static_cast<std::int64_t>(dtype_size(src.dtype_));
        const auto n = src.numel();
        if (n == 0) return;
        if (src.is_contiguous() && dst.is_contiguous()) {
            std::memcpy(dst.data_, src.data_, static_cast<std::size_t>(n * esz));
            return;
        }
        const auto nd = src.dim();
        if (nd == 0) {
            std::memcpy(dst.data_, src.data_, static_cast<std::size_t>(esz));
            return;
        }
        const auto inner = src.shape_[nd - 1];
        const bool run = src.strides_[nd - 1] == 1 && dst.strides_[nd - 1] == 1;
        std::vector<std::int64_t> idx(static_cast<std::size_t>(nd), 0);
        for (std::int64_t outer = 0; outer < n / inner; ++outer) {
            std::int64_t so = 0, dof = 0;
            for (std::int64_t d = 0; d < nd - 1; ++d) {
                so += idx[d] * src.strides_[d];
                dof += idx[d] * dst.strides_[d];
            }
            if (run) {
                std::memcpy(dst.data_ + dof * esz, src.data_ + so * esz, static_cast<std::size_t>(inner * esz));
            } else {
                for (std::int64_t i = 0; i < inner; ++i)
                    std::memcpy(dst.data_ + (dof + i * dst.strides_[nd - 1]) * esz,
                                src.data_ + (so + i * src.strides_[nd - 1]) * esz, static_cast<std::size_t>(esz));
            }
            for (std::int64_t d = nd - 2; d >= 0; --d) {
                if (++idx[d] < src.shape_[d]) break;
                idx[d] = 0;
            }
        }
    }

    std::shared_ptr<const void> owner_;
    std::byte* data_ = nullptr;
    Shape shape_;
    Shape strides_;
    DType dtype_ = DType::f32;
    Device device_ = Device::cpu;
    int device_index_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    return os << "Tensor(" << shape_str(t.shape()) << ", " << dtype_name(t.dtype()) << ", "
              << device_name(t.device()) << ")";
}

}  // namespace hyvideo
