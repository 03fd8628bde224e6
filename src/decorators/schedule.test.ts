import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScheduleError, scheduleSpec, toAwsCron, type ScheduleOptions } from "./schedule.js";

void describe("@schedule → EventBridge Scheduler", () => {
  void it("converts standard cron and shortcuts to AWS's six fields", () => {
    const table: Array<[ScheduleOptions, string, string]> = [
      [{ daily: true }, "cron(0 0 * * ? *)", "UTC"],
      [{ hourly: true }, "cron(0 * * * ? *)", "UTC"],
      [{ weekly: true }, "cron(0 0 ? * SUN *)", "UTC"],
      [{ daily: true, timezone: "Asia/Tokyo" }, "cron(0 0 * * ? *)", "Asia/Tokyo"],
      [
        { cron: "0 3 * * *", timezone: "Europe/Amsterdam" },
        "cron(0 3 * * ? *)",
        "Europe/Amsterdam",
      ],
      [{ cron: "*/15 * * * *" }, "cron(*/15 * * * ? *)", "UTC"],
      [{ cron: "30 8 * * 1-5" }, "cron(30 8 ? * 2-6 *)", "UTC"],
      [{ cron: "0 9 * * 0" }, "cron(0 9 ? * 1 *)", "UTC"],
      [{ cron: "0 9 * * 7" }, "cron(0 9 ? * 1 *)", "UTC"],
      [{ cron: "0 9 * * 5-7" }, "cron(0 9 ? * 1,6,7 *)", "UTC"],
      [{ cron: "0 9 * * 6,0" }, "cron(0 9 ? * 1,7 *)", "UTC"],
      [{ cron: "0 9 * * MON-FRI" }, "cron(0 9 ? * 2-6 *)", "UTC"],
      [{ cron: "0 0 * * */2" }, "cron(0 0 ? * 1,3,5,7 *)", "UTC"],
      [{ cron: "0 12 1,15 * *" }, "cron(0 12 1,15 * ? *)", "UTC"],
      [{ cron: "0 0 1 jan *" }, "cron(0 0 1 JAN ? *)", "UTC"],
      [{ cron: "5 4 * */3 *" }, "cron(5 4 * */3 ? *)", "UTC"],
      [{ cron: "@daily" }, "cron(0 0 * * ? *)", "UTC"],
      [{ cron: "@weekly" }, "cron(0 0 ? * 1 *)", "UTC"],
      [{ cron: "  0   3 * * *  " }, "cron(0 3 * * ? *)", "UTC"],
      // Six fields are AWS syntax already.
      [{ cron: "0 10 ? * MON-FRI *" }, "cron(0 10 ? * MON-FRI *)", "UTC"],
      [{ cron: "0 18 L * ? 2027" }, "cron(0 18 L * ? 2027)", "UTC"],
      [{ cron: "0 9 ? * 6#3 *" }, "cron(0 9 ? * 6#3 *)", "UTC"],
    ];
    for (const [options, expression, timezone] of table) {
      assert.deepEqual(scheduleSpec(options), { expression, timezone }, JSON.stringify(options));
    }
  });

  void it("refuses bad expressions and options with the reason", () => {
    const bad: Array<[ScheduleOptions, RegExp]> = [
      [{}, /give exactly one of cron, daily, hourly or weekly/],
      [{ daily: true, hourly: true }, /exactly one .* \(got daily and hourly\)/],
      [{ cron: "0 3 * * *", daily: true }, /got cron and daily/],
      [{ daily: "yes" as unknown as boolean }, /daily must be true or false, got "yes"/],
      [{ cron: "0 3 * *" }, /expected 5 fields .* got 4/],
      [{ cron: "0 3 * * * * *" }, /expected 5 fields .* got 7/],
      [{ cron: "60 3 * * *" }, /minute field '60': 60 is out of range 0-59/],
      [{ cron: "0 24 * * *" }, /hour field '24': 24 is out of range 0-23/],
      [{ cron: "0 3 0 * *" }, /day-of-month field '0': 0 is out of range 1-31/],
      [{ cron: "0 3 * 13 *" }, /month field '13': 13 is out of range 1-12/],
      [{ cron: "0 3 * * 8" }, /day-of-week field '8': 8 is out of range 0-7/],
      [{ cron: "0 3 1 * 1" }, /both day-of-month \(1\) and day-of-week \(1\) are restricted/],
      [{ cron: "0 3 * * FOO" }, /'FOO' is not a number or a name \(SUN, MON/],
      [{ cron: "0 3 L * *" }, /for L, W or # use AWS's six-field syntax/],
      [{ cron: "*/0 * * * *" }, /the step \/0 must be from 1 to 59/],
      [{ cron: "0 5-3 * * *" }, /the range 5-3 runs backwards/],
      [
        { cron: "0 3 * * * *" },
        /exactly one of day-of-month \(\*\) and day-of-week \(\*\) must be '\?'/,
      ],
      [{ cron: "0 3 ? * ? *" }, /exactly one of day-of-month/],
      [{ cron: 3 as unknown as string }, /cron must be a string/],
      [{ daily: true, timezone: "Mars/Olympus" }, /unknown timezone "Mars\/Olympus"/],
      [{ daily: true, timezone: "" }, /timezone must be an IANA name/],
      [{ daily: true, every: 2 } as ScheduleOptions, /unknown option 'every'/],
    ];
    for (const [options, reason] of bad) {
      assert.throws(
        () => scheduleSpec(options),
        (e: unknown) => {
          assert.ok(e instanceof ScheduleError, String(e));
          assert.match(e.message, reason);
          return true;
        },
        JSON.stringify(options),
      );
    }
  });

  void it("toAwsCron alone", () => {
    assert.equal(toAwsCron("0 3 * * *"), "0 3 * * ? *");
  });
});
