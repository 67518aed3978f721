// The table of per-worker event counters: one row per counter drives the public Counts
// (metrics.hpp), the worker's own WorkerCounters (counters.hpp), their sum and
// difference, the snapshot, the JSON and the Prometheus export. A new counter is one row.
//
// X(member, json_key, prometheus_family, help)
//   member             the field of Counts and of WorkerCounters
//   json_key           its key in metrics_json() and `vitte-sched run --json`
//   prometheus_family  its family in metrics_prometheus(), or nullptr where the export
//                      writes it another way (steals: one family, labelled by scope)
//   help               one line, the field's comment and the family's HELP text
#pragma once

#define VITTE_COUNTS(X)                                                                                        \
  X(executed, "executed", "vitte_tasks_executed_total", "Tasks run by the worker.")                          \
  X(skipped, "skipped", "vitte_tasks_skipped_total",                                                         \
    "Tasks of a cancelled group or failed loop, destroyed without running.")                                  \
  X(failed, "failed", "vitte_tasks_failed_total", "Tasks that threw an error (not vitte::Cancelled).")        \
  X(cancelled, "cancelled", "vitte_tasks_cancelled_total", "Tasks that ended by throwing vitte::Cancelled.")  \
  X(spawned, "spawned", "vitte_tasks_spawned_total", "Tasks pushed to the worker's own deque.")               \
  X(injected_taken, "injected_taken", "vitte_injected_taken_total",                                          \
    "Tasks taken from the own node's injection queue.")                                                       \
  X(policy_taken, "policy_taken", "vitte_policy_taken_total", "Policy work taken from a node's ReadyQueue.")  \
  X(steals_l3, "steals_same_l3", nullptr, "Successful steals from a worker sharing the thief's L3.")          \
  X(steals_node, "steals_same_node", nullptr, "Successful steals within the thief's NUMA node, other L3.")    \
  X(steals_remote, "steals_remote", nullptr,                                                                 \
    "Successful steals from another node (its deques, injection queue or ReadyQueue).")                       \
  X(failed_steal_rounds, "failed_steal_rounds", "vitte_failed_steal_rounds_total",                           \
    "Passes over all victims that found nothing.")                                                            \
  X(parks, "parks", "vitte_parks_total", "Times the worker went to sleep.")                                   \
  X(wakeups, "wakeups", "vitte_wakeups_total", "Times a producer woke a sleeping worker.")                    \
  X(boxed, "boxed", "vitte_boxed_total", "Closures too big for a task frame (heap-boxed).")
