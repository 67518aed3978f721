// Outbox: the hand-off from workers (and the program's threads) to the communication
// thread. A lock-free intrusive multi-producer single-consumer queue with a stub node.
//
// Invariants:
//   O1  head_ is the node pushed last (the stub when none was); every node pushed is
//       reachable from tail_ through next links once its producer finished push().
//   O2  push() is wait-free: one exchange on head_, then one store linking the previous
//       node to it. Between the two, that node and those after it are not reachable
//       yet: pop() reports empty and is called again later (the producer wakes the
//       communication thread after push() returned).
//   O3  only the communication thread calls pop(); it owns what pop() returns.
// Each node is popped exactly once, in push order per producer.
#pragma once

#include <atomic>
#include <string>

#include "vitte/detail/assert.hpp"

namespace vitte::dist::detail {

struct OutMsg {
  std::atomic<OutMsg*> next{nullptr};
  int dest = 0;
  int tag = 0;
  std::string bytes;
};

class Outbox {
 public:
  Outbox() = default;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox() {
    while (OutMsg* m = pop()) delete m;
  }

  void push(OutMsg* m) noexcept {
    // relaxed: published by the release store below (or by a later push's).
    m->next.store(nullptr, std::memory_order_relaxed);
    // acq_rel: acquire orders us after the previous producer's exchange, so prev is a
    // node it finished constructing; release is for the next producer likewise.
    OutMsg* prev = head_.exchange(m, std::memory_order_acq_rel);
    // release: pairs with the acquire loads of next in pop(), publishing *m (O2).
    prev->next.store(m, std::memory_order_release);
  }

  // Communication thread only (O3). Null: empty, or a producer is between its two steps.
  OutMsg* pop() noexcept {
    OutMsg* tail = tail_;
    OutMsg* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    // acquire: pairs with the producers' exchange; tail != head means one is mid-push.
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;
    push(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    return nullptr;
  }

 private:
  OutMsg stub_;
  std::atomic<OutMsg*> head_{&stub_};
  OutMsg* tail_ = &stub_;  // consumer-owned
};

}  // namespace vitte::dist::detail
