#include "solvers/perturbed/executor.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace perturbd {

absl::Status CancelToken::Check() const {
  if (cancelled()) return absl::CancelledError("request cancelled");
  if (deadline_ != absl::InfiniteFuture() && absl::Now() >= deadline_) {
    return absl::DeadlineExceededError("deadline exceeded during the solves");
  }
  return absl::OkStatus();
}

struct Executor::ActiveJob {
  explicit ActiveJob(Job j) : job(std::move(j)) {}
  Job job;
  int64_t next = 0;      // guarded by the executor's mu_
  bool aborted = false;  // guarded by the executor's mu_
  absl::Status status;   // guarded by the executor's mu_; first failure
  std::atomic<int64_t> completed{0};
};

Executor::Executor(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (num_threads <= 0) num_threads = 1;
  workers_.reserve(static_cast<size_t>(num_threads));
  for (int w = 0; w < num_threads; ++w) workers_.emplace_back([this, w] { WorkerLoop(w); });
}

Executor::~Executor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

void Executor::Submit(Job job) {
  const int64_t others = pending_.fetch_add(1, std::memory_order_relaxed);
  if (job.num_items <= 0) {
    job.finish(absl::OkStatus());
    pending_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  // An inline job counts as pending until its finish has returned, so a job submitted from its
  // run or finish is queued: no recursion.
  if (job.run_inline && others == 0) {
    RunInline(job);
    pending_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  auto active = std::make_shared<ActiveJob>(std::move(job));
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(active));
}

absl::Status Executor::RunItem(const Job& job, int64_t item, int worker) {
  absl::Status status = job.cancel != nullptr ? job.cancel->Check() : absl::OkStatus();
  if (status.ok()) status = job.run(item, worker);
  return status;
}

void Executor::RunInline(Job& job) {
  absl::Status status;
  for (int64_t item = 0; item < job.num_items && status.ok(); ++item) {
    status = RunItem(job, item, num_threads());
  }
  job.finish(std::move(status));
}

void Executor::CompleteItems(const std::shared_ptr<ActiveJob>& job, int64_t count) {
  const int64_t done = job->completed.fetch_add(count, std::memory_order_acq_rel) + count;
  if (done != job->job.num_items) return;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    status = job->status;
  }
  job->job.finish(std::move(status));
  pending_.fetch_sub(1, std::memory_order_relaxed);
}

void Executor::WorkerLoop(int worker) {
  auto has_work_or_stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  };
  for (;;) {
    std::shared_ptr<ActiveJob> job;
    int64_t item = 0;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&has_work_or_stopping));
      if (queue_.empty()) return;  // stopping and drained
      job = queue_.front();
      queue_.pop_front();
      item = job->next++;
      // Round robin: a job with items left goes to the back, so concurrent requests share
      // the workers instead of queueing behind the largest one.
      if (job->next < job->job.num_items) queue_.push_back(job);
    }

    absl::Status status = RunItem(job->job, item, worker);
    if (status.ok()) {
      CompleteItems(job, 1);
      continue;
    }
    // Abort: record the first failure and retire every item not yet claimed.
    int64_t skipped = 0;
    {
      absl::MutexLock lock(&mu_);
      if (!job->aborted) {
        job->aborted = true;
        job->status = std::move(status);
      }
      skipped = job->job.num_items - job->next;
      if (skipped > 0) {
        job->next = job->job.num_items;
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
          if (*it == job) {
            queue_.erase(it);
            break;
          }
        }
      }
    }
    CompleteItems(job, 1 + skipped);
  }
}

}  // namespace perturbd
