import Dispatch

/// Elapsed wall-clock time, as the evaluation commands and the sweep report it.
///
/// `DispatchTime` is monotonic (unaffected by clock changes), which is what a duration needs;
/// this is the one conversion of it to seconds, shared by everything that prints timings.
public enum WallClock {
    /// Seconds since `start`.
    public static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}
