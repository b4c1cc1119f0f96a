#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ikun::cpu {
namespace {

thread_local bool insideWorker = false;
constexpr int64_t kChunksPerThread = 4;

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  // (resize takes callMutex_, so a pool resized from one JS thread waits for a kernel running on another)
  ~ThreadPool() { stopWorkers(); }

  int size() const { return size_.load(); }

  void resize(int threads) {
    std::lock_guard<std::mutex> callLock(callMutex_);  // never while a run() is in flight
    stopWorkers();
    stopping_ = false;
    for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this] { workerLoop(); });
    size_.store(static_cast<int>(workers_.size()) + 1);
  }

  // Splits [0, count) into `chunks` contiguous chunks that the calling thread and the workers take one
  // at a time until none is left. With more chunks than threads, a thread slowed down (a busy core on
  // a shared machine) takes fewer of them instead of holding everyone up at the end.
  void run(int64_t count, int64_t chunks, const std::function<void(int64_t, int64_t)>& body) {
    std::unique_lock<std::mutex> callLock(callMutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      count_ = count;
      per_ = (count + chunks - 1) / chunks;
      totalChunks_ = (count + per_ - 1) / per_;
      nextChunk_ = 0;
      pending_ = totalChunks_;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    runAvailableChunks();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Takes chunks until none is left; the last thread to finish one wakes the caller.
  void runAvailableChunks() {
    for (;;) {
      int64_t chunk;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (nextChunk_ >= totalChunks_) return;
        chunk = nextChunk_++;
      }
      runChunk(chunk);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_all();
    }
  }

  void runChunk(int64_t chunk) {
    int64_t begin = chunk * per_, end = std::min(count_, begin + per_);
    if (begin >= end) return;
    bool was = insideWorker;
    insideWorker = true;
    try {
      (*body_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    insideWorker = was;
  }

  void workerLoop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && nextChunk_ < totalChunks_); });
        if (stopping_) return;
        seen = generation_;
      }
      runAvailableChunks();
    }
  }

  void stopWorkers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::atomic<int> size_{1};
  std::mutex callMutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t count_ = 0, per_ = 0, nextChunk_ = 0, totalChunks_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

ThreadPool& pool() {
  // Leaked on purpose: joining threads during static destruction at process exit can deadlock.
  static ThreadPool* instance = new ThreadPool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return *instance;
}

}  // namespace

void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (count <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t threads = pool().size(), pieces = (count + grain - 1) / grain;
  if (threads <= 1 || pieces <= 1 || insideWorker) {
    body(0, count);
    return;
  }
  pool().run(count, std::min(pieces, threads * kChunksPerThread), body);
}

int threadCount() { return pool().size(); }
bool insideParallelRegion() { return insideWorker; }
void setThreadCount(int threads) { pool().resize(threads); }

}  // namespace ikun::cpu
