// Makes Debian's prebuilt (uninstrumented) absl::Mutex, absl::CondVar and absl::Notification
// visible to ThreadSanitizer.
//
// Debian ships abseil as shared libraries built without -fsanitize=thread, so TSan sees neither
// the lock nor the unlock of an absl::Mutex (they are atomics and futexes inside
// libabsl_synchronization.so) and reports every access to ABSL_GUARDED_BY data as a race.
// This library, preloaded into the test processes (LD_PRELOAD, see scripts/sanitizers.sh),
// interposes the out-of-line member functions of those classes: each forwards to the real one
// (dlsym RTLD_NEXT) and tells TSan what happened with its mutex annotation API
// (__tsan_mutex_pre_lock / post_lock / pre_unlock / post_unlock, __tsan_acquire / release).
// Calls from our code and from inside the shared libraries (which go through the PLT) are
// both caught; only a thread's outermost call annotates. Waits that release and retake the
// mutex (Await, CondVar::Wait) are modelled as an unlock before and a lock after, and every
// Condition is evaluated under an annotated lock, as in absl's own TSan build.
//
// The TSan entry points are weak, so the library is harmless in a process without TSan (ctest
// itself, the shells the tests start): it then only forwards.
//
// Tied to the ABI of the installed abseil (the inline namespace is read from absl's own
// options header at compile time); scripts/sanitizers.sh builds it next to the TSan build.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_mutex_pre_lock(void* addr, unsigned flags) __attribute__((weak));
void __tsan_mutex_post_lock(void* addr, unsigned flags, int recursion) __attribute__((weak));
int __tsan_mutex_pre_unlock(void* addr, unsigned flags) __attribute__((weak));
void __tsan_mutex_post_unlock(void* addr, unsigned flags) __attribute__((weak));
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
}

namespace {

// Flags of the TSan mutex annotation API (sanitizer/tsan_interface.h).
constexpr unsigned kReadLock = 1 << 3;
constexpr unsigned kTryLock = 1 << 4;
constexpr unsigned kTryLockFailed = 1 << 5;

#define PERTURBD_STR2(x) #x
#define PERTURBD_STR(x) PERTURBD_STR2(x)

// "_ZN4absl" (or "_ZNK4absl" for a const member) <len><inline namespace> + rest: the mangled
// name of an absl member function.
std::string Mangled(const char* rest, bool is_const) {
  const std::string ns = PERTURBD_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return std::string(is_const ? "_ZNK4absl" : "_ZN4absl") + std::to_string(ns.size()) + ns + rest;
}

template <typename Fn>
Fn Real(const char* rest, bool is_const = false) {
  const std::string name = Mangled(rest, is_const);
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_tsan_shim: %s not found\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

void Locked(void* mu, unsigned flags) {
  if (__tsan_mutex_post_lock != nullptr) __tsan_mutex_post_lock(mu, flags, 0);
}
void PreLock(void* mu, unsigned flags) {
  if (__tsan_mutex_pre_lock != nullptr) __tsan_mutex_pre_lock(mu, flags);
}
void PreUnlock(void* mu, unsigned flags) {
  if (__tsan_mutex_pre_unlock != nullptr) __tsan_mutex_pre_unlock(mu, flags);
}
void Unlocked(void* mu, unsigned flags) {
  if (__tsan_mutex_post_unlock != nullptr) __tsan_mutex_post_unlock(mu, flags);
}

// Wrappers call the real functions, which call one another through the PLT (AwaitWithTimeout →
// AwaitWithDeadline, ...): only the outermost call of a thread annotates.
thread_local int t_depth = 0;
// The mutex whose annotated unlock (between pre_unlock and post_unlock) or lock (between
// pre_lock and post_lock) this thread is inside, if any.
thread_local const void* t_unlocking = nullptr;
thread_local const void* t_locking = nullptr;

class Nested {
 public:
  Nested() { ++t_depth; }
  ~Nested() { --t_depth; }
  Nested(const Nested&) = delete;
  Nested& operator=(const Nested&) = delete;
};

// absl evaluates a Condition with the mutex held, but inside its lock, unlock or wait code:
// in the waiting thread, or in whichever thread unlocks the mutex. TSan must see that
// evaluation as holding the mutex, so every Condition handed to the real functions is wrapped
// in one that re-annotates around the evaluation, the way absl's own TSan build does
// (EvalConditionAnnotated in absl/synchronization/mutex.cc).
struct AnnotatedCondition {
  const absl::Condition* cond;
  void* mu;
};

bool EvalAnnotated(AnnotatedCondition* c) {
  bool result = false;
  if (t_unlocking == c->mu) {
    // Inside our unlock: TSan considers the mutex released; relock around the evaluation.
    Unlocked(c->mu, 0);
    PreLock(c->mu, 0);
    Locked(c->mu, 0);
    result = c->cond->Eval();
    PreUnlock(c->mu, 0);
  } else if (t_locking == c->mu) {
    // Inside our lock: pretend it completed, evaluate, undo and resume locking.
    Locked(c->mu, 0);
    result = c->cond->Eval();
    PreUnlock(c->mu, 0);
    Unlocked(c->mu, 0);
    PreLock(c->mu, 0);
  } else {
    // Inside a wait (annotated as released): lock around the evaluation.
    PreLock(c->mu, 0);
    Locked(c->mu, 0);
    result = c->cond->Eval();
    PreUnlock(c->mu, 0);
    Unlocked(c->mu, 0);
  }
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

using VoidFn = void (*)(Mutex*);
using BoolFn = bool (*)(Mutex*);

void Mutex::Lock() {
  static const VoidFn real = Real<VoidFn>("5Mutex4LockEv");
  if (t_depth > 0) return real(this);
  Nested nested;
  PreLock(this, 0);
  real(this);
  Locked(this, 0);
}

void Mutex::Unlock() {
  static const VoidFn real = Real<VoidFn>("5Mutex6UnlockEv");
  if (t_depth > 0) return real(this);
  Nested nested;
  PreUnlock(this, 0);
  t_unlocking = this;
  real(this);
  t_unlocking = nullptr;
  Unlocked(this, 0);
}

bool Mutex::TryLock() {
  static const BoolFn real = Real<BoolFn>("5Mutex7TryLockEv");
  if (t_depth > 0) return real(this);
  Nested nested;
  PreLock(this, kTryLock);
  const bool ok = real(this);
  Locked(this, ok ? kTryLock : kTryLock | kTryLockFailed);
  return ok;
}

void Mutex::ReaderLock() {
  static const VoidFn real = Real<VoidFn>("5Mutex10ReaderLockEv");
  if (t_depth > 0) return real(this);
  Nested nested;
  PreLock(this, kReadLock);
  real(this);
  Locked(this, kReadLock);
}

void Mutex::ReaderUnlock() {
  static const VoidFn real = Real<VoidFn>("5Mutex12ReaderUnlockEv");
  if (t_depth > 0) return real(this);
  Nested nested;
  PreUnlock(this, kReadLock);
  t_unlocking = this;
  real(this);
  t_unlocking = nullptr;
  Unlocked(this, kReadLock);
}

bool Mutex::ReaderTryLock() {
  static const BoolFn real = Real<BoolFn>("5Mutex13ReaderTryLockEv");
  if (t_depth > 0) return real(this);
  Nested nested;
  PreLock(this, kReadLock | kTryLock);
  const bool ok = real(this);
  Locked(this, ok ? kReadLock | kTryLock : kReadLock | kTryLock | kTryLockFailed);
  return ok;
}

namespace {

// Lock-when: a lock that completes when the call returns; the condition is evaluated while
// locking.
template <typename Result, typename Call>
Result LockWhenAnnotated(Mutex* mu, unsigned flags, Call call) {
  Nested nested;
  PreLock(mu, flags);
  t_locking = mu;
  Result result = call();
  t_locking = nullptr;
  Locked(mu, flags);
  return result;
}

// Await and CondVar waits: the mutex is released while waiting and held again on return.
template <typename Result, typename Call>
Result WaitAnnotated(Mutex* mu, Call call) {
  Nested nested;
  PreUnlock(mu, 0);
  Unlocked(mu, 0);
  Result result = call();
  PreLock(mu, 0);
  Locked(mu, 0);
  return result;
}

}  // namespace

void Mutex::LockWhen(const Condition& cond) {
  using Fn = void (*)(Mutex*, const Condition&);
  static const Fn real = Real<Fn>("5Mutex8LockWhenERKNS0_9ConditionE");
  if (t_depth > 0) return real(this, cond);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  LockWhenAnnotated<int>(this, 0, [&] {
    real(this, wrapped);
    return 0;
  });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  using Fn = bool (*)(Mutex*, const Condition&, absl::Duration);
  static const Fn real = Real<Fn>("5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  if (t_depth > 0) return real(this, cond, timeout);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  return LockWhenAnnotated<bool>(this, 0, [&] { return real(this, wrapped, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  using Fn = bool (*)(Mutex*, const Condition&, absl::Time);
  static const Fn real = Real<Fn>("5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  if (t_depth > 0) return real(this, cond, deadline);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  return LockWhenAnnotated<bool>(this, 0, [&] { return real(this, wrapped, deadline); });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  using Fn = void (*)(Mutex*, const Condition&);
  static const Fn real = Real<Fn>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  if (t_depth > 0) return real(this, cond);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  LockWhenAnnotated<int>(this, kReadLock, [&] {
    real(this, wrapped);
    return 0;
  });
}

void Mutex::Await(const Condition& cond) {
  using Fn = void (*)(Mutex*, const Condition&);
  static const Fn real = Real<Fn>("5Mutex5AwaitERKNS0_9ConditionE");
  if (t_depth > 0) return real(this, cond);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  WaitAnnotated<int>(this, [&] {
    real(this, wrapped);
    return 0;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  using Fn = bool (*)(Mutex*, const Condition&, absl::Duration);
  static const Fn real = Real<Fn>("5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  if (t_depth > 0) return real(this, cond, timeout);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  return WaitAnnotated<bool>(this, [&] { return real(this, wrapped, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  using Fn = bool (*)(Mutex*, const Condition&, absl::Time);
  static const Fn real = Real<Fn>("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  if (t_depth > 0) return real(this, cond, deadline);
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  return WaitAnnotated<bool>(this, [&] { return real(this, wrapped, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  using Fn = void (*)(CondVar*, Mutex*);
  static const Fn real = Real<Fn>("7CondVar4WaitEPNS0_5MutexE");
  if (t_depth > 0) return real(this, mu);
  WaitAnnotated<int>(mu, [&] {
    real(this, mu);
    return 0;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  using Fn = bool (*)(CondVar*, Mutex*, absl::Duration);
  static const Fn real = Real<Fn>("7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  if (t_depth > 0) return real(this, mu, timeout);
  return WaitAnnotated<bool>(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  using Fn = bool (*)(CondVar*, Mutex*, absl::Time);
  static const Fn real = Real<Fn>("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  if (t_depth > 0) return real(this, mu, deadline);
  return WaitAnnotated<bool>(mu, [&] { return real(this, mu, deadline); });
}

// Notification: Notify releases, a successful wait acquires (its fast path is an atomic load
// inside the uninstrumented library).
void Notification::Notify() {
  using Fn = void (*)(Notification*);
  static const Fn real = Real<Fn>("12Notification6NotifyEv");
  if (__tsan_release != nullptr) __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  using Fn = void (*)(const Notification*);
  static const Fn real = Real<Fn>("12Notification19WaitForNotificationEv", true);
  real(this);
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  using Fn = bool (*)(const Notification*, absl::Duration);
  static const Fn real =
      Real<Fn>("12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", true);
  const bool notified = real(this, timeout);
  if (notified && __tsan_acquire != nullptr) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  using Fn = bool (*)(const Notification*, absl::Time);
  static const Fn real =
      Real<Fn>("12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", true);
  const bool notified = real(this, deadline);
  if (notified && __tsan_acquire != nullptr) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
