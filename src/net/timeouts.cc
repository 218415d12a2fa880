// The per-worker coarse timeout list.
#include "net/net.h"

namespace ficus::net {

void TimeoutList::Add(Entry* e) {
  e->prev_ = nullptr;
  e->next_ = head_;
  if (head_) head_->prev_ = e;
  head_ = e;
  ++size_;
}

void TimeoutList::Remove(Entry* e) {
  if (e->prev_)
    e->prev_->next_ = e->next_;
  else
    head_ = e->next_;
  if (e->next_) e->next_->prev_ = e->prev_;
  e->prev_ = e->next_ = nullptr;
  --size_;
}

void TimeoutList::Sweep(int64_t now_ms) {
  for (Entry* e = head_; e != nullptr;) {
    Entry* next = e->next_;  // OnTimeout only cancels waits; it never unlinks synchronously
    if (e->deadline_ms_ <= now_ms) {
      e->deadline_ms_ = Entry::kNone;
      e->OnTimeout();
    }
    e = next;
  }
}

}  // namespace ficus::net
