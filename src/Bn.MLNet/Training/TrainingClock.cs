using System.Diagnostics;

namespace Bn.MLNet.Training;

/// <summary>
/// The time a run has trained: a stopwatch plus the time of the runs it resumes (from their checkpoint), so a time
/// budget and the time-driven schedule count training time, not the time between a crash and the resume.
/// </summary>
internal sealed class TrainingClock(TimeSpan before)
{
    private readonly Stopwatch _stopwatch = Stopwatch.StartNew();

    /// <summary>Training time so far, this run's and the resumed runs'.</summary>
    public TimeSpan Elapsed => before + _stopwatch.Elapsed;
}
