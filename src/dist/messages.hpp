// The messages ranks exchange (tags on the cluster's own communicator) and which of them
// the termination waves count (docs/distributed.md, "Termination").
#pragma once

namespace vitte::dist::detail {

enum Tag : int {
  // Counted in sent/received: everything that can make its receiver active or reply.
  kCall = 1,      // u64 slot, u32 function, string args: run it here, reply kResult
  kResult = 2,    // u64 slot, u8 ok, string body (the result, or function/type/message)
  kTasks = 3,     // u8 lifeline push, u32 n, n x (u32 function, i32 origin, u64 slot, string args)
  kStealReq = 4,  // u8 lifeline: give me work (a lifeline request also registers the thief)
  kStealNone = 5, // u8 lifeline: nothing to give
  // Not counted: the waves themselves.
  kWave = 6,       // u64 epoch, u64 wave: report your counts
  kWaveReply = 7,  // u64 epoch, u64 wave, u8 passive, u64 sent, u64 received
  kDone = 8,       // u64 epoch: terminated; join_all() returns
};

inline bool counted(int tag) { return tag >= kCall && tag <= kStealNone; }

inline const char* tag_name(int tag) {
  switch (tag) {
    case kCall: return "call";
    case kResult: return "result";
    case kTasks: return "tasks";
    case kStealReq: return "steal request";
    case kStealNone: return "empty steal reply";
    case kWave: return "wave";
    case kWaveReply: return "wave reply";
    case kDone: return "termination";
    default: return "unknown";
  }
}

}  // namespace vitte::dist::detail
