// The wire format of vitte::dist (dist.hpp): how arguments and results cross ranks.
//
// One rule per type, chosen at compile time (WireTraits):
//   - pointers, member pointers and views (string_view, span): refused (an address means
//     nothing on another rank). A struct that holds a pointer is trivially copyable and
//     would travel as bytes: give it a cereal serialize() that sends what it points at;
//   - std::vector<T> of a trivially copyable T: its length, then its bytes in one block;
//   - std::vector<T> of anything else: its length, then each element by these rules;
//   - a type cereal can save and load (arithmetic types, std::string, the standard
//     containers cereal's headers below cover, and user types with a cereal serialize()
//     or save()/load() pair): cereal's binary archive;
//   - any other trivially copyable type (a plain struct of numbers): its bytes;
//   - anything else: a compile-time error that names this file's rule.
// The archive is cereal's binary one: both ends are ranks of the same build on machines of
// one byte order (the start-up table check refuses a different build, dist.hpp).
//
// Reading checks lengths against the bytes left, so a malformed payload fails with
// WireError instead of allocating what a corrupt length says.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace vitte::dist {

// A payload that does not decode (too short, a length larger than what follows, bytes
// left over): the message it came in is refused, naming the rank that sent it.
class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class T>
inline constexpr bool kAlwaysFalse = false;

template <class T>
struct IsVector : std::false_type {};
template <class T, class A>
struct IsVector<std::vector<T, A>> : std::true_type {
  using element = T;
};

template <class T>
constexpr bool cereal_can_send() {
  return cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
         cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;
}

// Views: trivially copyable, but what they point at stays on the sending rank.
template <class T>
struct IsView : std::false_type {};
template <class C, class Tr>
struct IsView<std::basic_string_view<C, Tr>> : std::true_type {};
template <class T, std::size_t N>
struct IsView<std::span<T, N>> : std::true_type {};

template <class T>
constexpr bool plain_bytes() {
  return std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
         !IsView<T>::value;
}

// A read-only stream over a payload that knows how many bytes are left.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view s) {
    char* p = const_cast<char*>(s.data());  // never written: the get area only
    setg(p, p, p + s.size());
  }
  std::size_t left() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

class Writer {
 public:
  Writer() : ar_(os_) {}
  template <class T>
  void put(const T& v);
  std::string take() { return std::move(os_).str(); }

 private:
  std::ostringstream os_;
  cereal::BinaryOutputArchive ar_;
};

class Reader {
 public:
  explicit Reader(std::string_view s) : buf_(s), is_(&buf_), ar_(is_) {}
  template <class T>
  void get(T& v);
  template <class T>
  T get() {
    T v{};
    get(v);
    return v;
  }
  std::size_t left() const { return buf_.left(); }
  // Refuses bytes left over: a payload is exactly its values.
  void finish() const {
    if (left() != 0) throw WireError(std::to_string(left()) + " bytes left over after the last value");
  }

 private:
  void need(std::uint64_t n, std::size_t each) const {
    if (each != 0 && n > left() / each)
      throw WireError("a length of " + std::to_string(n) + " with only " + std::to_string(left()) + " bytes left");
  }
  ViewBuf buf_;
  std::istream is_;
  cereal::BinaryInputArchive ar_;
};

template <class T>
void Writer::put(const T& v) {
  static_assert(!std::is_pointer_v<T> && !std::is_member_pointer_v<T>,
                "vitte::dist: a pointer cannot be sent to another rank (its address means nothing there)");
  static_assert(!IsView<T>::value,
                "vitte::dist: a view (std::string_view, std::span) cannot be sent: what it points at stays on this "
                "rank; send a std::string or a std::vector");
  if constexpr (IsVector<T>::value) {
    using E = typename IsVector<T>::element;
    ar_(static_cast<std::uint64_t>(v.size()));
    if constexpr (plain_bytes<E>() && !std::is_same_v<E, bool>) {
      if (!v.empty()) ar_(cereal::binary_data(v.data(), v.size() * sizeof(E)));
    } else {
      for (const auto& e : v) put(static_cast<const E&>(e));
    }
  } else if constexpr (cereal_can_send<T>()) {
    ar_(v);
  } else if constexpr (plain_bytes<T>()) {
    ar_(cereal::binary_data(&v, sizeof(T)));
  } else {
    static_assert(kAlwaysFalse<T>,
                  "vitte::dist: this type cannot be sent between ranks. Give it a cereal serialize() "
                  "(docs/distributed.md, \"Sending your own types\") or make it trivially copyable.");
  }
}

template <class T>
void Reader::get(T& v) {
  try {
    if constexpr (IsVector<T>::value) {
      using E = typename IsVector<T>::element;
      std::uint64_t n = 0;
      ar_(n);
      if constexpr (plain_bytes<E>() && !std::is_same_v<E, bool>) {
        need(n, sizeof(E));
        v.resize(static_cast<std::size_t>(n));
        if (n != 0) ar_(cereal::binary_data(v.data(), v.size() * sizeof(E)));
      } else {
        need(n, 1);  // every element takes at least one byte
        v.clear();
        v.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t i = 0; i < n; ++i) {
          E e{};
          get(e);
          v.push_back(std::move(e));
        }
      }
    } else if constexpr (cereal_can_send<T>()) {
      ar_(v);
    } else if constexpr (plain_bytes<T>()) {
      ar_(cereal::binary_data(&v, sizeof(T)));
    } else {
      static_assert(kAlwaysFalse<T>, "vitte::dist: this type cannot be received (see Writer::put)");
    }
  } catch (const WireError&) {
    throw;
  } catch (const cereal::Exception& e) {
    throw WireError(e.what());
  } catch (const std::length_error& e) {
    throw WireError(std::string("a length too large: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw WireError("a length too large to allocate");
  }
}

// Whether every type of a function's parameters and its result can be sent: checked
// where a function is registered, so a bad type fails there, once, at compile time.
template <class T>
constexpr bool sendable() {
  using D = std::decay_t<T>;
  if constexpr (std::is_void_v<D>) return true;
  else if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D> || IsView<D>::value) return false;
  else if constexpr (IsVector<D>::value) return sendable<typename IsVector<D>::element>();
  else return cereal_can_send<D>() || plain_bytes<D>();
}

template <class Tuple>
struct AllSendable;
template <class... T>
struct AllSendable<std::tuple<T...>> : std::bool_constant<(sendable<T>() && ... && true)> {};

template <class Tuple, std::size_t... I>
std::string write_tuple(const Tuple& t, std::index_sequence<I...>) {
  Writer w;
  (w.put(std::get<I>(t)), ...);
  return w.take();
}
template <class... T>
std::string write_args(const std::tuple<T...>& t) {
  return write_tuple(t, std::index_sequence_for<T...>{});
}
template <class... T>
std::tuple<T...> read_args(std::string_view bytes) {
  Reader r(bytes);
  std::tuple<T...> t;
  std::apply([&r](auto&... v) { (r.get(v), ...); }, t);
  r.finish();
  return t;
}

}  // namespace detail
}  // namespace vitte::dist
