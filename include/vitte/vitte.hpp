// vitte-scheduler: the whole public API.
#pragma once

#include "vitte/config.hpp"
#include "vitte/coro.hpp"
#include "vitte/error.hpp"
#include "vitte/future.hpp"
#include "vitte/graph.hpp"
#include "vitte/isolate.hpp"
#include "vitte/memory.hpp"
#include "vitte/metrics.hpp"
#include "vitte/parallel_for.hpp"
#include "vitte/plan.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/task.hpp"
#include "vitte/task_group.hpp"
#include "vitte/timer.hpp"
#include "vitte/topology.hpp"
#include "vitte/when_all.hpp"
