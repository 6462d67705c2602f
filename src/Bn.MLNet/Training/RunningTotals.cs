using System.Diagnostics;

namespace Bn.MLNet.Training;

/// <summary>Loss, correct predictions and images summed over a span of training steps (an epoch, or the steps between two log entries), with a clock.</summary>
internal sealed class RunningTotals
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Sum of the per-row losses (each step's mean loss times its rows).</summary>
    public double Loss { get; private set; }

    public long Correct { get; private set; }

    public long Images { get; private set; }

    public double MeanLoss => Loss / Images;

    public double Accuracy => (double)Correct / Images;

    public double Seconds => _clock.Elapsed.TotalSeconds;

    /// <summary>Adds one step of <paramref name="rows"/> rows whose mean loss was <paramref name="loss"/>.</summary>
    public void Add(float loss, int rows, long correct)
    {
        Loss += loss * rows;
        Correct += correct;
        Images += rows;
    }

    /// <summary>Images per second over <paramref name="seconds"/> (0 when no time has passed).</summary>
    public double ImagesPerSecond(double seconds) => seconds > 0 ? Images / seconds : 0;

    /// <summary>Empties the totals and restarts the clock.</summary>
    public void Restart()
    {
        Loss = 0;
        Correct = Images = 0;
        _clock.Restart();
    }
}
