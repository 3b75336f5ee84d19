// ddpipe::runs — reading and amending run records: `ddpipe runs list|show` and the launcher.
//
// Start here: run_record.h (the record, its statuses, its key), tracker.h (rank 0's writer),
// this file (the read side). Storage errors (core::Error kStorage) pass through every function;
// none of them keeps state, so they are as thread-safe as the store.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "runs/run_record.h"
#include "storage/store.h"

namespace ddpipe::runs {

// The runs of model `name`, or of every model when `name` is empty, newest start first
// (started_unix, then started). A record that cannot be parsed, or whose name/run_id differ from
// its key, is skipped with a warning naming its key. core::Error(kUsage) for a bad name.
std::vector<RunRecord> list_runs(storage::Store& store, const std::string& name = "");

// The record of one run. core::Error: kUsage for a bad name or run id; kNotFound naming the run
// and how to list the runs of the model (`ddpipe runs list NAME`); kData for a record that
// cannot be parsed.
RunRecord read_run(storage::Store& store, const std::string& name, const std::string& run_id);

// Read-modify-write of one record, for the launcher (it marks a run restarting between
// attempts, failed with the failing rank's error). An absent record is created first (name,
// run_id, status running, started now). After `change`, name and run_id are restored, the
// heartbeat is set to now (the launcher is alive) and, for a final status, finished to now when
// empty. Returns what it wrote. Not atomic against another writer of the record: call it while
// no tracker of the run is writing. core::Error: kUsage for bad names or a status `change`
// leaves that is not stored (nothing written); kData for an existing record that cannot be
// parsed (nothing written).
RunRecord update_run(storage::Store& store, const std::string& name, const std::string& run_id,
                     const std::function<void(RunRecord&)>& change);

// A plain-text table for `ddpipe runs list`, one line per record plus a header: model, run id,
// shown status, attempt, world size, started, heartbeat age ("12s ago"), progress ("epoch 3/10
// step 120/469"), ETA of the job while it runs, test_acc of latest_metrics, version ("-" for
// what is unknown). Each column is as wide as its header or its widest cell, whichever is
// more. For no records: one line saying so and how to start a run (`ddpipe run`).
std::string format_runs_table(const std::vector<RunRecord>& records, double now_unix,
                              double lost_after_s);

// The record as JSON for `ddpipe runs show`: to_json() with status replaced by the shown status,
// plus "stored_status" and "heartbeat_age_s" (seconds, null when the record has no heartbeat).
nlohmann::json shown_json(const RunRecord& record, double now_unix, double lost_after_s);

}  // namespace ddpipe::runs
