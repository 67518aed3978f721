// The usage the project started from, in C++: make a task, submit it, join.
#include <cstdio>
#include <functional>
#include <thread>

#include <vitte/vitte.hpp>

int main() {
  vitte::Scheduler sched(4);
  auto task = vitte::Task([] {
    std::printf("task on thread %zu\n", std::hash<std::thread::id>{}(std::this_thread::get_id()));
  });
  sched.submit(std::move(task));
  sched.join_all();
  return 0;
}
