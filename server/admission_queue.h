// Admission control in front of the executor: a bounded number of requests being solved and a
// bounded FIFO queue of requests waiting for their turn.
//
//   AdmissionQueue admission({.max_inflight = 256, .max_queue = 256});
//   absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> ticket =
//       admission.Admit(call_deadline, [](absl::Status status) {
//         if (!status.ok()) { /* cancelled, expired or shut down while queued: finish */ return; }
//         /* holds a slot: run the request, then call admission.Release() exactly once */
//       });
//   if (!ticket.ok()) { /* RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED: finish at once */ }
//   ...
//   admission.Cancel(*ticket, absl::CancelledError(...));  // from the call's OnCancel
//
// A request that holds a slot ("in flight") has been handed to the executor, whose workers
// share themselves round-robin among all in-flight requests; at most `max_inflight` do at
// once, so that each keeps a useful share of the workers and the memory of their results is
// bounded. Up to `max_queue` more wait, in arrival order, holding only their decoded request
// (bounded by the message size). One more is refused with RESOURCE_EXHAUSTED naming the limit:
// "max_queue (N) requests already queued behind max_inflight (M) in flight" — or, when
// max_queue is 0, "max_inflight (M) requests already in flight".
//
// Deadlines: a request whose deadline is less than `min_deadline` away when it arrives cannot
// be met and is refused at once with DEADLINE_EXCEEDED (it is neither queued nor solved). A
// queued request whose deadline passes is dropped when its turn comes (`start` gets
// DEADLINE_EXCEEDED and the slot goes to the next one); the server also cancels it as soon as
// gRPC reports the expiry (`Cancel`), so it does not sit in the queue until then.
//
// `start` is called exactly once: with OK when the request gets a slot (inline in `Admit` when
// one is free, else on the thread whose `Release` freed it), or with the status given to
// `Cancel` while it was still queued (inline in `Cancel`). It is never called with a lock held,
// so it may call back into the queue.
//
// Thread safety: every method may be called from any thread.
#ifndef PERTURBD_SERVER_ADMISSION_QUEUE_H_
#define PERTURBD_SERVER_ADMISSION_QUEUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace perturbd {

class AdmissionQueue {
 public:
  struct Options {
    // Requests solved at once (handed to the executor).
    uint32_t max_inflight = 256;
    // Requests waiting for a slot; 0 refuses every request beyond max_inflight.
    uint32_t max_queue = 256;
    // A request with less time than this left before its deadline is refused at once.
    absl::Duration min_deadline = absl::Milliseconds(1);
    // Told every change of the in-flight and queued counts (for gauges), with the queue's lock
    // held: it must be cheap and must not call back into the queue.
    std::function<void(int inflight_delta, int queued_delta)> on_change;
  };
  // Called once: OK = the request holds a slot; otherwise why it left the queue.
  using StartFn = absl::AnyInvocable<void(absl::Status)>;

  // One admitted request. Opaque; keep it to `Cancel` the request while it waits.
  class Ticket {
   public:
    // When the request was admitted (for the queue-wait metric).
    absl::Time admitted_at() const { return admitted_at_; }

   private:
    friend class AdmissionQueue;
    enum class State { kQueued, kStarted, kCancelled };
    Ticket(absl::Time deadline, StartFn start)
        : start_(std::move(start)), admitted_at_(absl::Now()), deadline_(deadline) {}
    StartFn start_;
    const absl::Time admitted_at_;
    const absl::Time deadline_;
    State state_ = State::kQueued;  // guarded by the queue's mutex
  };

  explicit AdmissionQueue(Options options) : options_(options) {}
  AdmissionQueue(const AdmissionQueue&) = delete;
  AdmissionQueue& operator=(const AdmissionQueue&) = delete;

  // Refuses a request whose `deadline` is under `min_deadline` away (DEADLINE_EXCEEDED); starts
  // it (calls `start(OK)` inline) when a slot is free; queues it when the queue has room; and
  // otherwise returns RESOURCE_EXHAUSTED. `start` is not called when this returns an error,
  // whose payload (request_translator.h's kRejectReasonPayload) names the reason: "deadline",
  // "max_inflight" or "max_queue".
  absl::StatusOr<std::shared_ptr<Ticket>> Admit(absl::Time deadline, StartFn start);

  // A request that held a slot has finished: the slot goes to the oldest queued request whose
  // deadline has not passed, and its `start(OK)` runs on this thread (after `start` with
  // DEADLINE_EXCEEDED for every expired one passed over).
  void Release();

  // Takes a still-queued request out of the queue and calls its `start(status)` inline;
  // returns false (and does nothing) when it has started or left the queue already.
  bool Cancel(const std::shared_ptr<Ticket>& ticket, absl::Status status);

  int64_t inflight() const;
  int64_t queued() const;
  const Options& options() const { return options_; }

 private:
  static void Start(Ticket& ticket, absl::Status status);
  void Changed(int inflight_delta, int queued_delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  int64_t inflight_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<Ticket>> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perturbd

#endif  // PERTURBD_SERVER_ADMISSION_QUEUE_H_
