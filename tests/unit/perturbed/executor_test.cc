#include "solvers/perturbed/executor.h"

#include <atomic>
#include <memory>
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

}  // namespace
}  // namespace perturbd
