// The process-wide worker pool over which the B×M solves of every request are spread.
//
// A request submits one `Executor::Job`: `num_items` independent work items (for a perturbed
// request, one item is a fixed block of samples of one instance; the blocks depend on the
// request only, never on the thread count, so results are bit-identical for any pool size).
// Workers take items from the active jobs in round-robin order, so a large request does not
// starve small ones, and the pool never runs more threads than it was created with however
// many requests are in flight.
//
// Cancellation and errors: before each item a worker checks the job's `CancelToken`; once it
// reports CANCELLED or DEADLINE_EXCEEDED, the job's remaining items are skipped and `finish`
// receives that status. A cancelled request therefore stops using CPU within one item.
//
// Jobs too small to be worth a thread hand-off (`run_inline`) run on the caller instead when
// no other job is pending: every item, then `finish`, inside `Submit`, with `worker` =
// num_threads(). Waking an idle worker costs tens of microseconds on a VM, more than such a
// job's whole work; under load (other jobs pending) the job is queued as usual, so that the
// workers, awake already, take it and the caller (a gRPC thread) stays free for I/O — inline
// runs there cost throughput (load_generator, concurrency 8). An inline job is pending
// until its `finish` has returned, so a job submitted from its `run` or `finish` is queued: a
// chain of small requests started from one another's `finish` cannot recurse.
//
// Thread safety: `Submit` may be called from any thread. `run` is called concurrently for
// different items of one job (with distinct `worker` indices in [0, num_threads), or
// num_threads() on the caller of an inline job); `finish` is called exactly once, after every
// `run` of the job has returned, on a worker thread (inline jobs: on the caller, in `Submit`).
// Lifetimes: the destructor waits for every submitted job to finish.
#ifndef PERTURBD_SOLVERS_PERTURBED_EXECUTOR_H_
#define PERTURBD_SOLVERS_PERTURBED_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace perturbd {

// Cancellation and deadline of one request. `Cancel` may be called from any thread.
class CancelToken {
 public:
  CancelToken() = default;
  explicit CancelToken(absl::Time deadline) : deadline_(deadline) {}
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  absl::Time deadline() const { return deadline_; }
  // OK, CANCELLED or DEADLINE_EXCEEDED.
  absl::Status Check() const;

 private:
  std::atomic<bool> cancelled_{false};
  absl::Time deadline_ = absl::InfiniteFuture();
};

class Executor {
 public:
  struct Job {
    int64_t num_items = 0;
    // Runs one item. A non-OK status aborts the job like a cancellation: the remaining items
    // are skipped and `finish` receives the first such status.
    std::function<absl::Status(int64_t item, int worker)> run;
    std::function<void(absl::Status status)> finish;
    std::shared_ptr<const CancelToken> cancel;  // may be null
    // Run on the calling thread inside `Submit` when no other job is pending (see above); for
    // jobs of a few microseconds.
    bool run_inline = false;
  };

  // num_threads ≤ 0 means one per hardware thread.
  explicit Executor(int num_threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()); }
  // Queues the job, or runs it before returning when `job.run_inline` and the executor has no
  // other job (see above).
  void Submit(Job job);
  // Jobs submitted and not yet finished.
  int64_t pending_jobs() const { return pending_.load(std::memory_order_relaxed); }

 private:
  struct ActiveJob;
  void WorkerLoop(int worker);
  // One item: the cancel check, then `run` (a worker's, or the caller's for an inline job).
  static absl::Status RunItem(const Job& job, int64_t item, int worker);
  void RunInline(Job& job);
  void CompleteItems(const std::shared_ptr<ActiveJob>& job, int64_t count);

  absl::Mutex mu_;
  std::deque<std::shared_ptr<ActiveJob>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> pending_{0};
  std::vector<std::thread> workers_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_EXECUTOR_H_
