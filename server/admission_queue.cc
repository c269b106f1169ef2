#include "server/admission_queue.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/request_translator.h"

namespace perturbd {
namespace {

absl::Status Refused(absl::string_view reason, std::string message) {
  absl::Status status = absl::ResourceExhaustedError(std::move(message));
  status.SetPayload(kRejectReasonPayload, absl::Cord(reason));
  return status;
}

}  // namespace

absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> AdmissionQueue::Admit(absl::Time deadline,
                                                                              StartFn start) {
  const absl::Duration left = deadline - absl::Now();
  if (left < options_.min_deadline) {
    absl::Status status = absl::DeadlineExceededError(
        absl::StrCat("the call's deadline leaves ", absl::FormatDuration(left),
                     ", under the server's min_deadline (",
                     absl::FormatDuration(options_.min_deadline), "); not started"));
    status.SetPayload(kRejectReasonPayload, absl::Cord("deadline"));
    return status;
  }
  std::shared_ptr<Ticket> ticket(new Ticket(deadline, std::move(start)));
  {
    absl::MutexLock lock(&mu_);
    if (inflight_ < static_cast<int64_t>(options_.max_inflight)) {
      ++inflight_;
      ticket->state_ = Ticket::State::kStarted;
      Changed(1, 0);
    } else if (queue_.size() < options_.max_queue) {
      queue_.push_back(ticket);
      Changed(0, 1);
      return ticket;
    } else if (options_.max_queue == 0) {
      return Refused("max_inflight", absl::StrCat("max_inflight (", options_.max_inflight,
                                                  ") requests already in flight; retry later"));
    } else {
      return Refused("max_queue", absl::StrCat("max_queue (", options_.max_queue,
                                               ") requests already queued behind max_inflight (",
                                               options_.max_inflight, ") in flight; retry later"));
    }
  }
  Start(*ticket, absl::OkStatus());
  return ticket;
}

void AdmissionQueue::Release() {
  std::vector<std::shared_ptr<Ticket>> expired;
  std::shared_ptr<Ticket> next;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    while (!queue_.empty()) {
      std::shared_ptr<Ticket> front = std::move(queue_.front());
      queue_.pop_front();
      Changed(0, -1);
      if (front->deadline_ <= now) {
        front->state_ = Ticket::State::kCancelled;
        expired.push_back(std::move(front));
        continue;
      }
      // The slot passes straight to the oldest live waiter (inflight_ is unchanged).
      front->state_ = Ticket::State::kStarted;
      next = std::move(front);
      break;
    }
    if (next == nullptr) {
      --inflight_;
      Changed(-1, 0);
    }
  }
  for (const std::shared_ptr<Ticket>& ticket : expired) {
    Start(*ticket,
          absl::DeadlineExceededError(absl::StrCat(
              "deadline exceeded after ", absl::FormatDuration(absl::Now() - ticket->admitted_at_),
              " in the admission queue; not started")));
  }
  if (next != nullptr) Start(*next, absl::OkStatus());
}

void AdmissionQueue::Start(Ticket& ticket, absl::Status status) {
  // Moved out first, so that whatever the closure owns (the decoded request) is freed as soon as
  // it has run, not when the ticket goes.
  StartFn start = std::move(ticket.start_);
  start(std::move(status));
}

void AdmissionQueue::Changed(int inflight_delta, int queued_delta) {
  if (options_.on_change) options_.on_change(inflight_delta, queued_delta);
}

bool AdmissionQueue::Cancel(const std::shared_ptr<Ticket>& ticket, absl::Status status) {
  if (ticket == nullptr) return false;
  {
    absl::MutexLock lock(&mu_);
    if (ticket->state_ != Ticket::State::kQueued) return false;
    ticket->state_ = Ticket::State::kCancelled;
    queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
    Changed(0, -1);
  }
  Start(*ticket, std::move(status));
  return true;
}

int64_t AdmissionQueue::inflight() const {
  absl::MutexLock lock(&mu_);
  return inflight_;
}

int64_t AdmissionQueue::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

}  // namespace perturbd
