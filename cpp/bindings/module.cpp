// The Python binding: the only file that knows about Python. It checks buffers, allocates
// outputs with the GIL held, then runs the search with the GIL released. The search runs
// on a helper thread while this thread waits in short slices, taking the GIL back only to
// check for Ctrl-C (signals are delivered to the main thread), so a long call can be
// interrupted and other Python threads run meanwhile.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "recbatch/id_index.hpp"
#include "recbatch/id_lines.hpp"
#include "recbatch/packed_items.hpp"
#include "recbatch/rank_lists.hpp"
#include "recbatch/ranking_lines.hpp"
#include "recbatch/row_texts.hpp"
#include "recbatch/search.hpp"
#include "recbatch/simd_level.hpp"

namespace py = pybind11;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
using Int64Array = py::array_t<std::int64_t, py::array::c_style>;
using ByteArray = py::array_t<std::uint8_t, py::array::c_style>;

// Takes the message as a C string: a std::string parameter would build (and, past 15
// characters, allocate) the message on every call, and some checks run once per element.
void require(bool ok, const char* message) {
    if (!ok) throw py::value_error(message);
}
void require(bool ok, const std::string& message) {
    if (!ok) throw py::value_error(message);
}

// Whether every entry lies in [0, limit): one branch-free pass per width.
template <typename T>
bool all_below(const T* values, std::size_t count, std::size_t limit) {
    bool ok = true;
    for (std::size_t i = 0; i < count; ++i)
        ok &= values[i] >= 0 && static_cast<std::uint64_t>(values[i]) < static_cast<std::uint64_t>(limit);
    return ok;
}
bool all_below(const recbatch::IndexArray& array, std::size_t count, std::size_t limit) {
    return array.wide != nullptr ? all_below(array.wide, count, limit) : all_below(array.narrow, count, limit);
}

// A 1-D C-contiguous int64 or int32 array, read in place (no conversion, no copy).
recbatch::IndexArray index_array(const py::array& array, const std::string& name) {
    require(array.ndim() == 1, name + " must be a 1-D array");
    require((array.flags() & py::array::c_style) != 0, name + " must be C-contiguous");
    recbatch::IndexArray out;
    if (py::isinstance<py::array_t<std::int64_t>>(array))
        out.wide = static_cast<const std::int64_t*>(array.data());
    else if (py::isinstance<py::array_t<std::int32_t>>(array))
        out.narrow = static_cast<const std::int32_t*>(array.data());
    else
        throw py::type_error(name + " must be an int64 or int32 array");
    return out;
}

class ItemIndex {
public:
    ItemIndex(const FloatArray& items, std::int64_t threads) {
        require(items.ndim() == 2, "items must be a 2-D array");
        require(items.shape(0) > 0 && items.shape(1) > 0, "items must have at least one row and one column");
        require(threads >= 1, "threads must be >= 1");
        const float* data = items.data();
        const auto n = static_cast<std::size_t>(items.shape(0)), d = static_cast<std::size_t>(items.shape(1));
        py::gil_scoped_release release;
        packed_ = std::make_shared<const recbatch::PackedItems>(
            data, n, d, recbatch::simd_level_available(recbatch::SimdLevel::avx2_int8),
            static_cast<std::size_t>(threads));
    }

    std::size_t n_items() const { return packed_->n_items(); }
    std::size_t dim() const { return packed_->dim(); }
    double max_norm() const { return packed_->block_norm_bound(0); }

    FloatArray items() const {
        FloatArray out({packed_->n_items(), packed_->dim()});
        float* data = out.mutable_data();
        py::gil_scoped_release release;
        packed_->unpack(data);
        return out;
    }

    py::tuple search(const FloatArray& queries, std::int64_t k, const std::optional<py::array>& indptr,
                     const std::optional<py::array>& indices, const std::optional<ByteArray>& allow,
                     std::int64_t threads, bool logsumexp, const std::string& simd,
                     const std::optional<py::dict>& stats) const {
        require(queries.ndim() == 2, "queries must be a 2-D array");
        require(static_cast<std::size_t>(queries.shape(1)) == dim(), "queries and items differ in dim");
        require(k >= 1, "k must be >= 1");
        require(threads >= 1, "threads must be >= 1");
        const auto n = static_cast<std::size_t>(queries.shape(0));
        recbatch::SearchInput input;
        input.queries = queries.data();
        input.n_queries = n;
        require(indptr.has_value() == indices.has_value(), "exclude needs both indptr and indices");
        if (indptr) {
            input.exclude_indptr = index_array(*indptr, "exclude indptr");
            input.exclude_indices = index_array(*indices, "exclude indices");
            require(static_cast<std::size_t>(indptr->shape(0)) == n + 1, "exclude indptr must have n_queries + 1 entries");
            const recbatch::IndexArray& p = input.exclude_indptr;
            const recbatch::IndexArray& ix = input.exclude_indices;
            require(p[0] == 0 && p[n] == indices->shape(0), "exclude indptr must start at 0 and end at len(indices)");
            for (std::size_t row = 0; row < n; ++row) require(p[row] <= p[row + 1], "exclude indptr must not decrease");
            require(all_below(ix, static_cast<std::size_t>(indices->shape(0)), n_items()), "exclude index out of range");
        }
        if (allow) {
            require(allow->ndim() == 1 && static_cast<std::size_t>(allow->shape(0)) == n_items(),
                    "allow must have one entry per item");
            input.allow = allow->data();
        }
        recbatch::SearchOptions options;
        options.k = static_cast<std::size_t>(k);
        options.threads = static_cast<std::size_t>(threads);
        options.logsumexp = logsumexp;
        recbatch::ScreenStats counters;  // this call's own: the module keeps no state between calls
        if (stats) options.stats = &counters;
        try {
            options.level = recbatch::parse_simd_level(simd);
        } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
        }
        require(recbatch::simd_level_available(options.level),
                "SIMD level '" + simd + "' is not supported by this CPU");

        Int64Array out_indices({n, options.k});
        FloatArray out_scores({n, options.k});
        py::object out_lse = py::none();
        recbatch::SearchOutput output;
        output.indices = out_indices.mutable_data();
        output.scores = out_scores.mutable_data();
        if (logsumexp) {
            py::array_t<double> lse(static_cast<py::ssize_t>(n));
            output.logsumexp = lse.mutable_data();
            out_lse = lse;
        }
        run_interruptibly(input, options, output);
        if (stats) {
            py::dict d = *stats;
            const auto add = [&d](const char* key, const std::atomic<std::uint64_t>& value) {
                d[key] = (d.contains(key) ? d[key].cast<std::uint64_t>() : 0) + value.load();
            };
            add("screened_queries", counters.screened_queries);
            add("candidates", counters.candidates);
            add("rescored_blocks", counters.rescored_blocks);
            add("rescored_items", counters.rescored_items);
            add("paused_tiles", counters.paused_tiles);
        }
        return py::make_tuple(out_indices, out_scores, out_lse);
    }

private:
    void run_interruptibly(const recbatch::SearchInput& input, recbatch::SearchOptions options,
                           const recbatch::SearchOutput& output) const {
        std::atomic<bool> cancel{false};
        options.cancel = &cancel;
        auto packed = packed_;
        std::packaged_task<bool()> task([&, packed] { return recbatch::search(*packed, input, options, output); });
        std::future<bool> done = task.get_future();
        std::thread runner(std::move(task));
        bool interrupted = false;
        for (;;) {
            std::future_status status;
            {
                py::gil_scoped_release release;
                status = done.wait_for(std::chrono::milliseconds(50));
            }
            if (status == std::future_status::ready) break;
            if (PyErr_CheckSignals() != 0) {
                interrupted = true;
                cancel.store(true);
                py::gil_scoped_release release;
                done.wait();
                break;
            }
        }
        runner.join();
        if (interrupted) throw py::error_already_set();
        try {
            done.get();
        } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
        }
    }

    std::shared_ptr<const recbatch::PackedItems> packed_;
};

// A sequence of str as UTF-8 views, read in place: CPython keeps a str's UTF-8 bytes with the
// object, and `items` (a tuple: strong references, whatever another thread does to a list)
// keeps the objects. A str with lone surrogates, which UTF-8 cannot encode, is taken with
// "surrogatepass" into `spill`, for ids and keys alike, so equal strings still match.
struct Utf8Views {
    Utf8Views(const py::handle& sequence, const char* name) {
        items = py::reinterpret_steal<py::tuple>(PySequence_Tuple(sequence.ptr()));
        if (!items) throw py::type_error(std::string(name) + " must be a sequence of str");
        views.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            PyObject* item = PyTuple_GET_ITEM(items.ptr(), static_cast<Py_ssize_t>(i));
            if (!PyUnicode_Check(item)) {
                throw py::type_error(std::string(name) + "[" + std::to_string(i) + "] must be a str, got " +
                                     Py_TYPE(item)->tp_name);
            }
            Py_ssize_t size = 0;
            const char* data = PyUnicode_AsUTF8AndSize(item, &size);
            if (data == nullptr) {
                PyErr_Clear();
                auto encoded = py::reinterpret_steal<py::bytes>(PyUnicode_AsEncodedString(item, "utf-8", "surrogatepass"));
                if (!encoded) throw py::error_already_set();
                spill.emplace_back(encoded);
                views.emplace_back(spill.back());
            } else {
                views.emplace_back(data, static_cast<std::size_t>(size));
            }
        }
    }
    py::tuple items;
    std::deque<std::string> spill;  // a deque: its strings stay where they are as it grows
    std::vector<std::string_view> views;
};

// The position of the first entry of `values` that is not a str (exactly) of 1 to max_length
// code points, or -1: a record's list of ids checked in one pass, with no Python call per entry.
std::int64_t first_invalid_id(const py::list& values, std::int64_t max_length) {
    const Py_ssize_t n = PyList_GET_SIZE(values.ptr());
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PyList_GET_ITEM(values.ptr(), i);
        if (!PyUnicode_CheckExact(item)) return i;
        const Py_ssize_t length = PyUnicode_GET_LENGTH(item);
        if (length < 1 || length > max_length) return i;
    }
    return -1;
}

// A vector's contents as a NumPy array that owns them (moved, not copied).
template <typename T>
py::array_t<T> to_array(std::vector<T>&& values) {
    auto* owned = new std::vector<T>(std::move(values));
    py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(), owner);
}

// A batch's input lines (their bytes joined, and where each ends) scanned for the common shape,
// see recbatch/id_lines.hpp: (ids, list_offsets, entry_starts, entry_lengths), where ids[i] is
// line i's id as a str, or None when the line was not accepted.
py::tuple scan_id_lines(const py::bytes& buffer, const Int64Array& line_ends, const std::string& id_field,
                        const std::string& list_field, std::int64_t max_id_chars, std::int64_t max_list) {
    require(line_ends.ndim() == 1, "line_ends must be a 1-D array");
    require(max_id_chars >= 1 && max_list >= 1, "max_id_chars and max_list must be >= 1");
    const std::string_view bytes(PyBytes_AS_STRING(buffer.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(buffer.ptr())));
    const recbatch::IdLineShape shape{id_field, list_field, static_cast<std::size_t>(max_id_chars),
                                      static_cast<std::size_t>(max_list)};
    const auto lines = static_cast<std::size_t>(line_ends.shape(0));
    recbatch::IdLineScan scan;
    try {
        py::gil_scoped_release release;  // `buffer` is immutable and referenced by the caller
        scan = recbatch::scan_id_lines(bytes, line_ends.data(), lines, shape);
    } catch (const std::invalid_argument& error) {
        throw py::value_error(error.what());
    }
    py::list ids(lines);
    for (std::size_t i = 0; i < lines; ++i) {
        if (scan.accepted[i] == 0) {
            ids[i] = py::none();
            continue;
        }
        PyObject* id = PyUnicode_DecodeUTF8(bytes.data() + scan.id_start[i], scan.id_length[i], "strict");
        if (id == nullptr) throw py::error_already_set();
        PyList_SET_ITEM(ids.ptr(), static_cast<Py_ssize_t>(i), id);  // steals the reference (an empty slot)
    }
    return py::make_tuple(ids, to_array(std::move(scan.list_offsets)), to_array(std::move(scan.entry_start)),
                          to_array(std::move(scan.entry_length)));
}

// Each id's JSON text, as RowTexts. A str with lone surrogates (no UTF-8 form) is written by
// Python's json.dumps, which escapes them as \udxxx.
std::unique_ptr<recbatch::RowTexts> json_string_texts(const py::handle& ids) {
    auto items = py::reinterpret_steal<py::tuple>(PySequence_Tuple(ids.ptr()));
    if (!items) throw py::type_error("ids must be a sequence of str");
    std::string all;
    std::vector<std::size_t> ends;
    ends.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        PyObject* item = PyTuple_GET_ITEM(items.ptr(), static_cast<Py_ssize_t>(i));
        if (!PyUnicode_Check(item)) {
            throw py::type_error("ids[" + std::to_string(i) + "] must be a str, got " + Py_TYPE(item)->tp_name);
        }
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(item, &size);
        if (data != nullptr) {
            recbatch::append_json_string({data, static_cast<std::size_t>(size)}, all);
        } else {
            PyErr_Clear();
            all += py::module_::import("json").attr("dumps")(py::handle(item)).cast<std::string>();
        }
        ends.push_back(all.size());
    }
    std::vector<std::string_view> views;
    views.reserve(ends.size());
    std::size_t start = 0;
    for (const std::size_t end : ends) {
        views.emplace_back(all.data() + start, end - start);
        start = end;
    }
    return std::make_unique<recbatch::RowTexts>(views);
}

// Each result row of `indices` (n, k) as lead + prefixes[i] + head + [texts] (+ middle +
// [scores]) + tail, for the rows' entries >= 0 (see recbatch::format_rows). The rows are written
// with the GIL released, into one buffer; then split into one bytes object per row.
py::list format_rows(const recbatch::RowTexts& texts, const Int64Array& indices, const py::object& scores,
                     const py::bytes& lead, const py::object& prefixes, const py::bytes& head,
                     const py::bytes& middle, const py::bytes& tail, const recbatch::RowTexts* extra) {
    require(indices.ndim() == 2, "indices must be a 2-D array (rows x k)");
    const auto n = static_cast<std::size_t>(indices.shape(0));
    const auto k = static_cast<std::size_t>(indices.shape(1));
    using DoubleArray = py::array_t<double, py::array::c_style>;
    DoubleArray score_array;
    if (!scores.is_none()) {
        require(py::isinstance<DoubleArray>(scores), "scores must be a C-contiguous float64 array");
        score_array = scores.cast<DoubleArray>();
        require(score_array.ndim() == 2 && static_cast<std::size_t>(score_array.shape(0)) == n &&
                    static_cast<std::size_t>(score_array.shape(1)) == k,
                "scores must have the shape of indices");
    }
    // The prefixes as a tuple: it holds them while the GIL is released, whatever happens to the
    // caller's sequence meanwhile.
    py::tuple prefix_tuple;
    std::vector<std::string_view> prefix_views;
    if (!prefixes.is_none()) {
        prefix_tuple = py::tuple(prefixes);
        require(prefix_tuple.size() == n, "prefixes must hold one bytes object per row of indices");
        prefix_views.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            PyObject* item = PyTuple_GET_ITEM(prefix_tuple.ptr(), static_cast<Py_ssize_t>(i));
            if (!PyBytes_Check(item)) {
                throw py::type_error("prefixes[" + std::to_string(i) + "] must be bytes, got " + Py_TYPE(item)->tp_name);
            }
            prefix_views.emplace_back(PyBytes_AS_STRING(item), static_cast<std::size_t>(PyBytes_GET_SIZE(item)));
        }
    }
    const recbatch::RowFormat format{std::string_view(lead), std::string_view(head), std::string_view(middle),
                                     std::string_view(tail)};
    std::string buffer;
    std::vector<std::size_t> ends(n);
    {
        py::gil_scoped_release release;
        recbatch::format_rows(texts, extra, indices.data(), scores.is_none() ? nullptr : score_array.data(), n, k,
                              format, prefixes.is_none() ? nullptr : prefix_views.data(), buffer, ends.data());
    }
    py::list lines(n);
    std::size_t start = 0;
    for (std::size_t i = 0; i < n; ++i) {
        lines[i] = py::bytes(buffer.data() + start, ends[i] - start);
        start = ends[i];
    }
    return lines;
}

// A personalized-ranking batch's lines (their bytes joined, and where each ends) ranked and
// written where they have the common shape and a known user, or a popularity to rank by
// (recbatch/ranking_lines.hpp; popularity is None or checked by the model): one
// bytes object per input line, None for a line left to the caller. The GIL is released
// throughout; every input is immutable or owned by the caller, who keeps it.
py::tuple rank_ranking_lines(const recbatch::IdIndex& users, const recbatch::IdIndex& items,
                            const FloatArray& user_factors, const FloatArray& item_factors,
                            const py::object& popularity, const py::bytes& buffer,
                            const Int64Array& line_ends, std::int64_t max_id_chars, std::int64_t max_list,
                            std::int64_t threads) {
    require(user_factors.ndim() == 2 && item_factors.ndim() == 2 && user_factors.shape(1) == item_factors.shape(1),
            "user_factors and item_factors must be 2-D arrays of one dimension");
    require(static_cast<std::size_t>(user_factors.shape(0)) == users.size() &&
                static_cast<std::size_t>(item_factors.shape(0)) == items.size(),
            "user_factors and item_factors must have a row per id");
    require(line_ends.ndim() == 1, "line_ends must be a 1-D array");
    require(max_id_chars >= 1 && max_list >= 1 && threads >= 1, "max_id_chars, max_list and threads must be >= 1");
    recbatch::RankingModel model;
    model.users = &users;
    model.items = &items;
    model.user_factors = user_factors.data();
    model.item_factors = item_factors.data();
    model.dim = static_cast<std::size_t>(item_factors.shape(1));
    using DoubleArray = py::array_t<double, py::array::c_style>;
    DoubleArray popularity_array;
    if (!popularity.is_none()) {
        require(py::isinstance<DoubleArray>(popularity), "popularity must be a C-contiguous float64 array");
        popularity_array = popularity.cast<DoubleArray>();
        require(popularity_array.ndim() == 1 && static_cast<std::size_t>(popularity_array.shape(0)) == items.size(),
                "popularity must have a value per item");
        model.popularity = popularity_array.data();
    }
    model.max_id_chars = static_cast<std::size_t>(max_id_chars);
    model.max_list = static_cast<std::size_t>(max_list);
    const std::string_view bytes(PyBytes_AS_STRING(buffer.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(buffer.ptr())));
    const auto lines = static_cast<std::size_t>(line_ends.shape(0));
    recbatch::RankedLines ranked;
    try {
        py::gil_scoped_release release;
        recbatch::rank_ranking_lines(model, bytes, line_ends.data(), lines, static_cast<std::size_t>(threads), ranked);
    } catch (const std::invalid_argument& error) {
        throw py::value_error(error.what());
    }
    // One bytes object for every line done (one allocation and a copy per task's text, not an
    // object per line: those were a serial quarter of a microsecond per line under the GIL),
    // with each line's end in it.
    std::size_t total = 0;
    for (const std::string& text : ranked.storage) total += text.size();
    py::bytes text(nullptr, total);
    char* at = PyBytes_AS_STRING(text.ptr());
    for (const std::string& text_part : ranked.storage) {
        if (!text_part.empty()) std::memcpy(at, text_part.data(), text_part.size());
        at += text_part.size();
    }
    ByteArray done(static_cast<py::ssize_t>(lines));
    std::memcpy(done.mutable_data(), ranked.done.data(), lines);
    Int64Array ends(static_cast<py::ssize_t>(ranked.lines.size()));
    std::int64_t* end = ends.mutable_data();
    std::int64_t so_far = 0;
    for (const std::string_view line : ranked.lines) {
        so_far += static_cast<std::int64_t>(line.size());
        *end++ = so_far;
    }
    return py::make_tuple(text, done, ends);
}

// Candidate lists ranked by the inner products with their queries (or by given item values
// when `queries` is None): (order, scores, logsumexp), see recbatch/rank_lists.hpp. The Python
// layer has checked dtypes and finiteness; the shapes and offsets are checked here.
py::tuple rank_lists(const py::object& queries, const py::object& items, const py::object& item_values,
                     const Int64Array& offsets, const Int64Array& entries, std::int64_t threads) {
    using DoubleArray = py::array_t<double, py::array::c_style>;
    require(offsets.ndim() == 1 && offsets.shape(0) >= 1, "offsets must be a 1-D array of n_lists + 1 entries");
    require(entries.ndim() == 1, "entries must be a 1-D array");
    require(threads >= 1, "threads must be >= 1");
    const auto n = static_cast<std::size_t>(offsets.shape(0) - 1);
    const std::int64_t* offset = offsets.data();
    require(offset[0] == 0 && offset[n] == entries.shape(0), "offsets must start at 0 and end at len(entries)");
    std::int64_t longest = 0;
    for (std::size_t i = 0; i < n; ++i) {
        require(offset[i] <= offset[i + 1], "offsets must not decrease");
        longest = std::max(longest, offset[i + 1] - offset[i]);
    }
    recbatch::ListScores source;
    FloatArray query_array, item_array;
    DoubleArray value_array;
    if (!queries.is_none()) {
        require(py::isinstance<FloatArray>(queries) && py::isinstance<FloatArray>(items),
                "queries and items must be C-contiguous float32 arrays");
        query_array = queries.cast<FloatArray>();
        item_array = items.cast<FloatArray>();
        require(query_array.ndim() == 2 && item_array.ndim() == 2, "queries and items must be 2-D arrays");
        require(static_cast<std::size_t>(query_array.shape(0)) == n, "queries must have one row per list");
        require(query_array.shape(1) == item_array.shape(1), "queries and items differ in dim");
        source.queries = query_array.data();
        source.items = item_array.data();
        source.dim = static_cast<std::size_t>(item_array.shape(1));
        source.n_items = static_cast<std::size_t>(item_array.shape(0));
    } else {
        require(py::isinstance<DoubleArray>(item_values), "item_values must be a C-contiguous float64 array");
        value_array = item_values.cast<DoubleArray>();
        require(value_array.ndim() == 1, "item_values must be a 1-D array");
        source.item_values = value_array.data();
        source.n_items = static_cast<std::size_t>(value_array.shape(0));
    }
    const std::int64_t* entry = entries.data();
    bool in_range = true;
    for (py::ssize_t i = 0; i < entries.shape(0); ++i) in_range &= entry[i] < static_cast<std::int64_t>(source.n_items);
    require(in_range, "entries must be below the number of items");
    recbatch::CandidateLists lists;
    lists.offsets = offset;
    lists.entries = entry;
    lists.n_lists = n;
    const auto width = static_cast<std::size_t>(longest);
    Int64Array order({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(width)});
    DoubleArray scores({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(width)});
    DoubleArray logsumexp(static_cast<py::ssize_t>(n));
    std::int64_t* order_out = order.mutable_data();
    double* scores_out = scores.mutable_data();
    double* lse_out = logsumexp.mutable_data();
    {
        py::gil_scoped_release release;
        recbatch::rank_lists(source, lists, width, order_out, scores_out, lse_out, static_cast<std::size_t>(threads));
    }
    return py::make_tuple(order, scores, logsumexp);
}

std::vector<std::string> level_names(const std::vector<recbatch::SimdLevel>& levels) {
    std::vector<std::string> names;
    for (auto level : levels) names.emplace_back(recbatch::simd_level_name(level));
    return names;
}

}  // namespace

PYBIND11_MODULE(_core, m, py::mod_gil_not_used()) {
    m.doc() = "recbatch's compiled kernel; use the recbatch package, not this module";
    m.attr("__version__") = RECBATCH_VERSION;
    m.def("detected_simd_level", [] { return std::string(recbatch::simd_level_name(recbatch::detected_simd_level())); });
    m.def("available_simd_levels", [] { return level_names(recbatch::available_simd_levels()); });
    m.def("default_thread_count", &recbatch::default_thread_count);
    m.def("rank_ranking_lines", &rank_ranking_lines, py::arg("users"), py::arg("items"), py::arg("user_factors"),
          py::arg("item_factors"), py::arg("popularity").none(true), py::arg("buffer"),
          py::arg("line_ends"),
          py::arg("max_id_chars"), py::arg("max_list"), py::arg("threads"));
    m.def("rank_lists", &rank_lists, py::arg("queries"), py::arg("items"), py::arg("item_values"), py::arg("offsets"),
          py::arg("entries"), py::arg("threads"));
    py::class_<ItemIndex>(m, "ItemIndex")
        .def(py::init<const FloatArray&, std::int64_t>(), py::arg("items"), py::arg("threads") = 1)
        .def_property_readonly("n_items", &ItemIndex::n_items)
        .def_property_readonly("dim", &ItemIndex::dim)
        .def_property_readonly("max_norm", &ItemIndex::max_norm)
        .def("items", &ItemIndex::items)
        .def("search", &ItemIndex::search, py::arg("queries"), py::arg("k"), py::arg("exclude_indptr"),
             py::arg("exclude_indices"), py::arg("allow"), py::arg("threads"), py::arg("logsumexp"), py::arg("simd"),
             py::arg("stats") = py::none());
    // Lookups hold the GIL: they read Python strings, and a batch of them takes microseconds.
    m.def("first_invalid_id", &first_invalid_id, py::arg("values"), py::arg("max_length"));
    m.def("scan_id_lines", &scan_id_lines, py::arg("buffer"), py::arg("line_ends"), py::arg("id_field"),
          py::arg("list_field"), py::arg("max_id_chars"), py::arg("max_list"));
    py::class_<recbatch::IdIndex>(m, "IdIndex")
        .def(py::init([](const py::handle& ids) {
                 Utf8Views views(ids, "ids");
                 return std::make_unique<recbatch::IdIndex>(views.views);
             }),
             py::arg("ids"))
        .def("__len__", &recbatch::IdIndex::size)
        .def(
            "rows",
            [](const recbatch::IdIndex& self, const py::handle& keys) {
                Utf8Views views(keys, "keys");
                Int64Array rows(static_cast<py::ssize_t>(views.views.size()));
                self.find_many(views.views.data(), views.views.size(), rows.mutable_data());
                return rows;
            },
            py::arg("keys"))
        .def(
            "rows_in",
            [](const recbatch::IdIndex& self, const py::bytes& buffer, const Int64Array& starts,
               const Int64Array& lengths) {
                require(starts.ndim() == 1 && lengths.ndim() == 1 && starts.shape(0) == lengths.shape(0),
                        "starts and lengths must be 1-D arrays of the same length");
                const char* data = PyBytes_AS_STRING(buffer.ptr());
                const auto size = static_cast<std::int64_t>(PyBytes_GET_SIZE(buffer.ptr()));
                const auto n = static_cast<std::size_t>(starts.shape(0));
                std::vector<std::string_view> views(n);
                for (std::size_t i = 0; i < n; ++i) {
                    const std::int64_t start = starts.data()[i], length = lengths.data()[i];
                    require(start >= 0 && length >= 0 && length <= size - start,
                            "every span (starts[i], lengths[i]) must lie within the buffer");
                    views[i] = std::string_view(data + start, static_cast<std::size_t>(length));
                }
                Int64Array rows(static_cast<py::ssize_t>(n));
                std::int64_t* out = rows.mutable_data();
                {
                    py::gil_scoped_release release;  // the bytes are immutable and held by the caller
                    self.find_many(views.data(), n, out);
                }
                return rows;
            },
            py::arg("buffer"), py::arg("starts"), py::arg("lengths"));
    py::class_<recbatch::RowTexts>(m, "RowTexts")
        .def(py::init([](const py::handle& texts) {
                 auto items = py::reinterpret_steal<py::tuple>(PySequence_Tuple(texts.ptr()));
                 if (!items) throw py::type_error("texts must be a sequence of bytes");
                 std::vector<std::string_view> views;
                 views.reserve(items.size());
                 for (std::size_t i = 0; i < items.size(); ++i) {
                     PyObject* item = PyTuple_GET_ITEM(items.ptr(), static_cast<Py_ssize_t>(i));
                     if (!PyBytes_Check(item)) {
                         throw py::type_error("texts[" + std::to_string(i) + "] must be bytes, got " +
                                              Py_TYPE(item)->tp_name);
                     }
                     views.emplace_back(PyBytes_AS_STRING(item), static_cast<std::size_t>(PyBytes_GET_SIZE(item)));
                 }
                 return std::make_unique<recbatch::RowTexts>(views);
             }),
             py::arg("texts"))
        .def_static("json_strings", &json_string_texts, py::arg("ids"))
        .def("__len__", &recbatch::RowTexts::size)
        .def("format_rows", &format_rows, py::arg("indices"), py::arg("scores"), py::arg("lead"),
             py::arg("prefixes"), py::arg("head"), py::arg("middle"), py::arg("tail"), py::arg("extra").none(true));
}
