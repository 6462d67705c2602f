using System.Globalization;
using Bn.MLNet.Training;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>Console progress for training: a live bar on an interactive terminal, one line per epoch otherwise.</summary>
internal static class TrainingConsole
{
    /// <summary>One line: epoch, step, loss, accuracy, validation accuracy, learning rate and throughput.</summary>
    public static string Describe(TrainingProgress r, double? timeBudgetSeconds = null) => string.Create(CultureInfo.InvariantCulture,
        $"{Epoch(r, timeBudgetSeconds)} step {r.Step} loss {r.Loss:0.0000} acc {r.Accuracy:0.0000}{(r.ValidationAccuracy is double v ? $" val {v:0.0000}" : string.Empty)} lr {r.LearningRate:0.####} {r.ImagesPerSecond:0} img/s");

    /// <summary>
    /// "epoch N/M"; when training runs until a time budget ends (M is only the cap, <see cref="TrainCommandOptions.EpochsUnderTimeBudget"/>),
    /// "epoch N" and the seconds used of the budget instead.
    /// </summary>
    private static string Epoch(TrainingProgress r, double? timeBudgetSeconds) =>
        timeBudgetSeconds is double budget && TrainCommandOptions.EpochsAreOnlyTheCap(r.PlannedEpochs, timeBudgetSeconds)
            ? string.Create(CultureInfo.InvariantCulture, $"epoch {r.Epoch + 1} ({r.ElapsedSeconds:0}/{budget:0} s)")
            : $"epoch {r.Epoch + 1}/{r.PlannedEpochs}";

    /// <summary>How far training is, by the rule the trainer's schedule follows.</summary>
    private static double Fraction(TrainingProgress r, double? timeBudgetSeconds) =>
        LearningRateSchedule.FractionDone(r.Step, r.PlannedSteps, r.ElapsedSeconds, timeBudgetSeconds);

    /// <summary>
    /// Runs <paramref name="train"/> with a progress receiver: a Spectre progress bar (with elapsed and remaining time)
    /// when the console is interactive, plain epoch lines when it is not, and none when <paramref name="quiet"/>.
    /// With <paramref name="timeBudgetSeconds"/> (the trainer's <see cref="TrainerOptions.TimeBudget"/>, in seconds) the bar
    /// also advances with the time used.
    /// </summary>
    public static T Run<T>(bool quiet, Func<IProgress<TrainingProgress>?, T> train, double? timeBudgetSeconds = null)
    {
        if (quiet)
        {
            return train(null);
        }

        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            return train(new Callback(r =>
            {
                if (r.EpochCompleted)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{Describe(r, timeBudgetSeconds)}  {r.ElapsedSeconds:0}s  working set {Environment.WorkingSet / (1024 * 1024)} MB"));
                }
            }));
        }

        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("starting", maxValue: 1);
                result = train(new Callback(r =>
                {
                    task.Value = Fraction(r, timeBudgetSeconds);
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"{Epoch(r, timeBudgetSeconds)} loss {r.Loss:0.000} acc {r.Accuracy:0.000} {r.ImagesPerSecond:0} img/s"));
                    if (r.EpochCompleted)
                    {
                        AnsiConsole.MarkupLine(Markup.Escape(Describe(r, timeBudgetSeconds)));
                    }
                }));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>Reports synchronously on the training thread (unlike <see cref="Progress{T}"/>, which posts).</summary>
    private sealed class Callback(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
