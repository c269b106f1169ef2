#include "solvers/perturbed/executor.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace perturbd {
namespace {

TEST(Executor, RunsEveryItemOnceAndFinishesOnce) {
  Executor executor(3);
  constexpr int64_t kItems = 1000;
  std::vector<std::atomic<int>> seen(kItems);
  std::atomic<int> finished{0};
  absl::Notification done;
  Executor::Job job;
  job.num_items = kItems;
  job.run = [&](int64_t item, int worker) {
    EXPECT_GE(worker, 0);
    EXPECT_LT(worker, 3);
    seen[static_cast<size_t>(item)].fetch_add(1);
    return absl::OkStatus();
  };
  job.finish = [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    finished.fetch_add(1);
    done.Notify();
  };
  executor.Submit(std::move(job));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  EXPECT_EQ(finished.load(), 1);
}

TEST(Executor, CancelledJobSkipsRemainingItemsAndReportsCancelled) {
  Executor executor(2);
  auto token = std::make_shared<CancelToken>();
  std::atomic<int> ran{0};
  absl::Notification done;
  absl::Status final_status;
  Executor::Job job;
  job.num_items = 100000;
  job.cancel = token;
  job.run = [&](int64_t item, int) {
    if (ran.fetch_add(1) == 10) token->Cancel();
    return absl::OkStatus();
  };
  job.finish = [&](absl::Status s) {
    final_status = s;
    done.Notify();
  };
  executor.Submit(std::move(job));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(final_status.code(), absl::StatusCode::kCancelled);
  EXPECT_LT(ran.load(), 20);  // at most one further item per worker after the cancel
}

TEST(Executor, ExpiredDeadlineReportsDeadlineExceeded) {
  Executor executor(1);
  auto token = std::make_shared<CancelToken>(absl::Now() - absl::Seconds(1));
  absl::Notification done;
  absl::Status final_status;
  std::atomic<int> ran{0};
  Executor::Job job;
  job.num_items = 10;
  job.cancel = token;
  job.run = [&](int64_t, int) {
    ran.fetch_add(1);
    return absl::OkStatus();
  };
  job.finish = [&](absl::Status s) {
    final_status = s;
    done.Notify();
  };
  executor.Submit(std::move(job));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(final_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ran.load(), 0);
}

TEST(Executor, ItemErrorAbortsTheJobWithThatStatus) {
  Executor executor(2);
  absl::Notification done;
  absl::Status final_status;
  Executor::Job job;
  job.num_items = 50;
  job.run = [&](int64_t item, int) {
    return item == 3 ? absl::FailedPreconditionError("instance 3 unbounded") : absl::OkStatus();
  };
  job.finish = [&](absl::Status s) {
    final_status = s;
    done.Notify();
  };
  executor.Submit(std::move(job));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(final_status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(final_status.message(), "instance 3 unbounded");
}

TEST(Executor, ConcurrentJobsShareTheWorkersRoundRobin) {
  // A small job submitted after a large one finishes long before the large one does.
  Executor executor(1);
  std::atomic<int64_t> large_done_items{0};
  absl::Notification large_done, small_done;
  int64_t large_items_when_small_finished = -1;
  Executor::Job large;
  large.num_items = 2000;
  large.run = [&](int64_t, int) {
    absl::SleepFor(absl::Microseconds(200));
    large_done_items.fetch_add(1);
    return absl::OkStatus();
  };
  large.finish = [&](absl::Status) { large_done.Notify(); };
  Executor::Job small;
  small.num_items = 3;
  small.run = [&](int64_t, int) { return absl::OkStatus(); };
  small.finish = [&](absl::Status) {
    large_items_when_small_finished = large_done_items.load();
    small_done.Notify();
  };
  executor.Submit(std::move(large));
  executor.Submit(std::move(small));
  ASSERT_TRUE(small_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_LT(large_items_when_small_finished, 100);
  ASSERT_TRUE(large_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
}

TEST(Executor, InlineJobRunsOnTheCallerBeforeSubmitReturns) {
  Executor executor(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<int> seen(5, 0);
  bool finished = false;
  Executor::Job job;
  job.num_items = 5;
  job.run_inline = true;
  job.run = [&](int64_t item, int worker) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(worker, 2);  // num_threads(): the caller's own workspace slot
    ++seen[static_cast<size_t>(item)];
    return absl::OkStatus();
  };
  job.finish = [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(std::this_thread::get_id(), caller);
    finished = true;
  };
  executor.Submit(std::move(job));
  EXPECT_TRUE(finished);  // before Submit returned: no waiting
  EXPECT_EQ(seen, std::vector<int>(5, 1));
  EXPECT_EQ(executor.pending_jobs(), 0);
}

TEST(Executor, InlineJobSubmittedFromAnInlineFinishIsQueuedNotNested) {
  // A chain of inline jobs, each submitting the next from its finish (as the server's
  // admission queue starts the next queued request), must not grow the caller's stack: the
  // second runs on a worker.
  Executor executor(1);
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id second_ran_on;
  int second_worker = -1;
  absl::Notification second_done;
  Executor::Job second;
  second.num_items = 1;
  second.run_inline = true;
  second.run = [&](int64_t, int worker) {
    second_ran_on = std::this_thread::get_id();
    second_worker = worker;
    return absl::OkStatus();
  };
  second.finish = [&](absl::Status) { second_done.Notify(); };
  Executor::Job first;
  first.num_items = 1;
  first.run_inline = true;
  first.run = [&](int64_t, int) { return absl::OkStatus(); };
  first.finish = [&](absl::Status) { executor.Submit(std::move(second)); };
  executor.Submit(std::move(first));
  ASSERT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_NE(second_ran_on, caller);
  EXPECT_EQ(second_worker, 0);
  // Once nothing is pending, a later inline job runs on this thread again (`second` counts as
  // pending until its finish has returned, on the worker).
  for (int i = 0; i < 30000 && executor.pending_jobs() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(executor.pending_jobs(), 0);
  std::thread::id third_ran_on;
  Executor::Job third;
  third.num_items = 1;
  third.run_inline = true;
  third.run = [&](int64_t, int) {
    third_ran_on = std::this_thread::get_id();
    return absl::OkStatus();
  };
  third.finish = [](absl::Status) {};
  executor.Submit(std::move(third));
  EXPECT_EQ(third_ran_on, caller);
}

TEST(Executor, InlineJobIsQueuedWhileAnotherJobIsPending) {
  // Under load the workers are awake: a small job goes to them and the caller stays free.
  Executor executor(1);
  absl::Notification release, busy_done, small_done;
  Executor::Job busy;
  busy.num_items = 1;
  busy.run = [&](int64_t, int) {
    release.WaitForNotification();
    return absl::OkStatus();
  };
  busy.finish = [&](absl::Status) { busy_done.Notify(); };
  executor.Submit(std::move(busy));
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id small_ran_on;
  Executor::Job small;
  small.num_items = 1;
  small.run_inline = true;
  small.run = [&](int64_t, int worker) {
    small_ran_on = std::this_thread::get_id();
    EXPECT_EQ(worker, 0);
    return absl::OkStatus();
  };
  small.finish = [&](absl::Status) { small_done.Notify(); };
  executor.Submit(std::move(small));
  EXPECT_FALSE(small_done.HasBeenNotified());  // queued behind the busy worker
  release.Notify();
  ASSERT_TRUE(small_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(busy_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_NE(small_ran_on, caller);
}

TEST(Executor, InlineJobHonoursCancelAndItemErrors) {
  Executor executor(1);
  auto token = std::make_shared<CancelToken>();
  int ran = 0;
  absl::Status cancelled_status;
  Executor::Job cancelled;
  cancelled.num_items = 10;
  cancelled.run_inline = true;
  cancelled.cancel = token;
  cancelled.run = [&](int64_t, int) {
    if (++ran == 3) token->Cancel();
    return absl::OkStatus();
  };
  cancelled.finish = [&](absl::Status s) { cancelled_status = s; };
  executor.Submit(std::move(cancelled));
  EXPECT_EQ(cancelled_status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(ran, 3);

  int failed_ran = 0;
  absl::Status failed_status;
  Executor::Job failed;
  failed.num_items = 10;
  failed.run_inline = true;
  failed.run = [&](int64_t item, int) {
    ++failed_ran;
    return item == 1 ? absl::FailedPreconditionError("instance 1 infeasible") : absl::OkStatus();
  };
  failed.finish = [&](absl::Status s) { failed_status = s; };
  executor.Submit(std::move(failed));
  EXPECT_EQ(failed_status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(failed_ran, 2);
}

}  // namespace
}  // namespace perturbd
