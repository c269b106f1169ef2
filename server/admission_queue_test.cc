#include "server/admission_queue.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/request_translator.h"

namespace perturbd {
namespace {

using ::testing::HasSubstr;

// Records every start callback's status, in order.
struct Log {
  absl::Mutex mu;
  std::vector<std::string> events ABSL_GUARDED_BY(mu);

  AdmissionQueue::StartFn Starter(std::string name) {
    return [this, name](absl::Status status) {
      absl::MutexLock lock(&mu);
      events.push_back(
          status.ok() ? name : absl::StrCat(name, ":", absl::StatusCodeToString(status.code())));
    };
  }
  std::vector<std::string> Events() {
    absl::MutexLock lock(&mu);
    return events;
  }
};

const absl::Time kFar = absl::InfiniteFuture();

TEST(AdmissionQueue, StartsUpToMaxInflightThenQueuesThenRefusesNamingTheLimit) {
  Log log;
  AdmissionQueue queue({.max_inflight = 2, .max_queue = 1});
  ASSERT_TRUE(queue.Admit(kFar, log.Starter("a")).ok());
  ASSERT_TRUE(queue.Admit(kFar, log.Starter("b")).ok());
  ASSERT_TRUE(queue.Admit(kFar, log.Starter("c")).ok());
  EXPECT_THAT(log.Events(), ::testing::ElementsAre("a", "b"));
  EXPECT_EQ(queue.inflight(), 2);
  EXPECT_EQ(queue.queued(), 1);

  absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> refused =
      queue.Admit(kFar, log.Starter("d"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("max_queue (1) requests already queued behind max_inflight (2)"));
  EXPECT_EQ(RejectReason(refused.status()), "max_queue");

  queue.Release();  // a finishes: c starts
  EXPECT_THAT(log.Events(), ::testing::ElementsAre("a", "b", "c"));
  EXPECT_EQ(queue.inflight(), 2);
  EXPECT_EQ(queue.queued(), 0);
  queue.Release();
  queue.Release();
  EXPECT_EQ(queue.inflight(), 0);
}

TEST(AdmissionQueue, WithoutAQueueTheLimitNamedIsMaxInflight) {
  Log log;
  AdmissionQueue queue({.max_inflight = 1, .max_queue = 0});
  ASSERT_TRUE(queue.Admit(kFar, log.Starter("a")).ok());
  absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> refused =
      queue.Admit(kFar, log.Starter("b"));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("max_inflight (1) requests already in flight"));
  EXPECT_EQ(RejectReason(refused.status()), "max_inflight");
  EXPECT_THAT(log.Events(), ::testing::ElementsAre("a"));
}

TEST(AdmissionQueue, QueueIsFifoAndCancelRemovesAWaiterOnlyOnce) {
  Log log;
  AdmissionQueue queue({.max_inflight = 1, .max_queue = 3});
  ASSERT_TRUE(queue.Admit(kFar, log.Starter("a")).ok());
  auto b = queue.Admit(kFar, log.Starter("b"));
  auto c = queue.Admit(kFar, log.Starter("c"));
  auto d = queue.Admit(kFar, log.Starter("d"));
  ASSERT_TRUE(b.ok() && c.ok() && d.ok());
  EXPECT_TRUE(queue.Cancel(*c, absl::CancelledError("gone")));
  EXPECT_FALSE(queue.Cancel(*c, absl::CancelledError("again")));
  EXPECT_EQ(queue.queued(), 2);
  queue.Release();  // a → b
  EXPECT_FALSE(queue.Cancel(*b, absl::CancelledError("started already")));
  queue.Release();  // b → d
  queue.Release();  // d done
  EXPECT_THAT(log.Events(), ::testing::ElementsAre("a", "c:CANCELLED", "b", "d"));
  EXPECT_EQ(queue.inflight(), 0);
  EXPECT_EQ(queue.queued(), 0);
  EXPECT_FALSE(queue.Cancel(nullptr, absl::CancelledError("null")));
}

TEST(AdmissionQueue, DeadlinesUnderTheFloorAreRefusedAndExpiredWaitersArePassedOver) {
  Log log;
  AdmissionQueue queue({.max_inflight = 1, .max_queue = 4, .min_deadline = absl::Milliseconds(50)});
  absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> past =
      queue.Admit(absl::Now() - absl::Seconds(1), log.Starter("past"));
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(past.status().message()), HasSubstr("min_deadline"));
  EXPECT_EQ(RejectReason(past.status()), "deadline");
  auto tight = queue.Admit(absl::Now() + absl::Milliseconds(10), log.Starter("tight"));
  EXPECT_EQ(tight.status().code(), absl::StatusCode::kDeadlineExceeded);

  ASSERT_TRUE(queue.Admit(kFar, log.Starter("a")).ok());
  ASSERT_TRUE(queue.Admit(absl::Now() + absl::Milliseconds(60), log.Starter("soon")).ok());
  ASSERT_TRUE(queue.Admit(kFar, log.Starter("later")).ok());
  absl::SleepFor(absl::Milliseconds(80));
  queue.Release();  // a done: "soon" expired while queued, "later" starts
  EXPECT_THAT(log.Events(), ::testing::ElementsAre("a", "soon:DEADLINE_EXCEEDED", "later"));
  EXPECT_EQ(queue.inflight(), 1);
  EXPECT_EQ(queue.queued(), 0);
  queue.Release();
  EXPECT_EQ(queue.inflight(), 0);
}

TEST(AdmissionQueue, GaugeDeltasAddUpToTheCounts) {
  std::atomic<int> inflight{0};
  std::atomic<int> queued{0};
  AdmissionQueue::Options options{.max_inflight = 2, .max_queue = 2};
  options.on_change = [&](int di, int dq) {
    inflight += di;
    queued += dq;
  };
  Log log;
  AdmissionQueue queue(options);
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(queue.Admit(kFar, log.Starter("x")).ok());
  EXPECT_EQ(inflight.load(), 2);
  EXPECT_EQ(queued.load(), 2);
  for (int k = 0; k < 4; ++k) queue.Release();
  EXPECT_EQ(inflight.load(), 0);
  EXPECT_EQ(queued.load(), 0);
}

// Many threads admit, cancel and release at once; every start runs exactly once and the counts
// return to zero. (Run under ThreadSanitizer by scripts/sanitizers.sh.)
TEST(AdmissionQueue, ConcurrentAdmitCancelReleaseKeepsTheBooks) {
  AdmissionQueue queue({.max_inflight = 3, .max_queue = 8});
  std::atomic<int> started{0};
  std::atomic<int> left_queue{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 500; ++k) {
        auto ticket = queue.Admit(kFar, [&](absl::Status status) {
          if (status.ok()) {
            ++started;
            queue.Release();  // finishes at once, handing the slot on
          } else {
            ++left_queue;
          }
        });
        if (!ticket.ok()) {
          ++refused;
          continue;
        }
        if (k % 3 == 0) queue.Cancel(*ticket, absl::CancelledError("client went away"));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(started + left_queue + refused, 4 * 500);
  EXPECT_EQ(queue.inflight(), 0);
  EXPECT_EQ(queue.queued(), 0);
}

}  // namespace
}  // namespace perturbd
