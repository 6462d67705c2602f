using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>What the <c>train</c> command prints and writes: the settings line, the results table and the metrics JSON.</summary>
internal static class TrainReport
{
    /// <summary>The test-set evaluation and the process's memory at the end of a run.</summary>
    internal sealed record TestOutcome(
        MulticlassClassificationMetrics Metrics, double EvaluationSeconds, long Rows, long PeakWorkingSet, long ManagedHeap, long ManagedHeapAtLastGc)
    {
        /// <summary>The test set scored with test-time flip averaging (null when the input is not an image).</summary>
        public MulticlassClassificationMetrics? FlipAveraged { get; init; }

        /// <summary>Seconds of the flip-averaged evaluation (null when not run).</summary>
        public double? FlipAveragedEvaluationSeconds { get; init; }
    }

    private static readonly JsonSerializerOptions MetricsJson = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static void PrintSettings(TrainCommand.TrainingData data, BatchNormCnnOptions o, bool recipe, bool bfloat16Measured)
    {
        NetworkArchitecture a = o.Network;
        TrainerOptions t = o.Trainer;
        int threads = t.Threads ?? Environment.ProcessorCount;
        AnsiConsole.MarkupLine($"[bold]Bn.MLNet train[/]  data {Markup.Escape(data.DataDirectory)}  rows {data.Train.GetRowCount()}{(data.Validation is null ? string.Empty : $" (+{data.Validation.GetRowCount()} validation)")}  test {data.Test.GetRowCount()}");
        AnsiConsole.MarkupLine($"network  {Markup.Escape(ArchitectureSpec.Format(a))}{(a.BFloat16Convolutions ? "  bfloat16 convolutions in training" : string.Empty)}");
        if (bfloat16Measured && BFloat16Support.IsAccelerated)
        {
            AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"bf16     bfloat16 convolutions measured {BFloat16Support.ConvolutionSpeedup:0.00}x as fast as float32 here, so the default is {(BFloat16Support.IsFasterThanFloat32 ? "bfloat16" : "float32")}; --bf16 true|false forces it")));
        }

        AnsiConsole.MarkupLine(Markup.Escape(recipe
            ? $"recipe   natural images (TrainerOptions.UseNaturalImageRecipe: random crops, horizontal flips, label smoothing; --no-recipe turns it off)"
            : "recipe   none (--no-recipe: the data and the loss are used as they are)"));
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"training {t.Optimizer}{(t.Optimizer == OptimizerKind.Sgd ? (t.Nesterov ? " Nesterov" : string.Empty) + $" momentum {t.Momentum}" : string.Empty)} lr {t.LearningRate}x{t.LearningRateMultiplier} {t.Schedule}, wd {t.WeightDecay}, batch {t.BatchSize}, {Length(t)}, crop {t.RandomCropPadding} flip {t.HorizontalFlip} erasing {t.RandomErasingProbability}{(t.WeightAveragingDecay is double ema ? $" ema {ema}" : string.Empty)}, smoothing {t.LabelSmoothing}, seed {t.Seed}, {threads} threads")));
    }

    /// <summary>With --checkpoint-dir: where checkpoints go, and the one training will resume from, if any.</summary>
    public static void PrintCheckpoints(BatchNormCnnOptions o)
    {
        if (o.CheckpointDirectory is not { } dir)
            return;
        string full = Path.GetFullPath(dir);
        string? newest = Directory.Exists(full)
            ? Directory.GetFiles(full, "checkpoint-*" + Checkpoint.Extension).Order(StringComparer.Ordinal).LastOrDefault()
            : null;
        AnsiConsole.MarkupLine(Markup.Escape(newest is null
            ? $"checkpoints after every epoch in {full}"
            : $"resuming from the checkpoint {newest} (checkpoints after every epoch in {full})"));
    }

    /// <summary>How long training runs: steps or epochs, "or S s" under a time budget, or "until S s" when only the budget limits it.</summary>
    private static string Length(TrainerOptions o)
    {
        double? seconds = o.TimeBudget?.TotalSeconds;
        string budget = seconds is double b ? b.ToString(CultureInfo.InvariantCulture) + " s" : string.Empty;
        string planned = o.MaxSteps is long steps ? $"{steps} steps" : $"{o.Epochs} epochs";
        if (budget.Length == 0)
            return planned;
        return o.MaxSteps is null && TrainCommandOptions.EpochsAreOnlyTheCap(o.Epochs, seconds) ? $"until {budget}" : $"{planned} or {budget}";
    }

    public static void PrintResults(TestOutcome outcome, TrainingHistory history)
    {
        var table = new Table().AddColumn("metric").AddColumn("value");
        table.AddRow("test accuracy", F4(outcome.Metrics.MicroAccuracy));
        table.AddRow("test loss", F4(outcome.Metrics.LogLoss));
        if (outcome.FlipAveraged is { } flip)
            table.AddRow("test accuracy, flip-averaged", F4(flip.MicroAccuracy));
        table.AddRow("train seconds", history.TrainSeconds.ToString("0.0", CultureInfo.InvariantCulture));
        table.AddRow("epochs / steps", $"{history.Epochs.Count} / {history.TotalSteps}");
        if (history.BestEpoch is int best)
            table.AddRow("best epoch", $"{best + 1}{(history.RestoredBestWeights ? " (weights restored)" : string.Empty)}{(history.StoppedEarly ? ", stopped early" : string.Empty)}");
        if (history.StoppedByTimeBudget)
            table.AddRow("time budget", "reached: training stopped before the planned steps");
        if (history.ResumedAfterEpoch is int resumed)
            table.AddRow("checkpoint", history.LoadedFinishedRun ? $"the finished run's model ({resumed} epochs), not trained again" : $"resumed after epoch {resumed}");
        if (history.Divergence is DivergenceInfo d)
            table.AddRow("[red]diverged[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"step {d.Step} (epoch {d.Epoch + 1}), lr {d.LearningRate:G4}, loss {d.Loss}")));
        table.AddRow("peak working set", $"{outcome.PeakWorkingSet / (1024.0 * 1024.0):0} MB");
        table.AddRow("managed heap (end)", $"{outcome.ManagedHeap / (1024.0 * 1024.0):0} MB");
        AnsiConsole.Write(table);
    }

    public static void WriteMetrics(string metricsPath, TestOutcome outcome, BatchNormCnnTransformer model, BatchNormCnnOptions options, bool quiet)
    {
        TrainingHistory history = model.TrainingHistory!;
        using BatchNormCnnNetwork network = model.CopyNetwork();
        var metrics = new JsonObject
        {
            ["testAccuracy"] = outcome.Metrics.MicroAccuracy,
            ["testLoss"] = outcome.Metrics.LogLoss,
            ["testAccuracyFlipAveraged"] = outcome.FlipAveraged?.MicroAccuracy,
            ["testLossFlipAveraged"] = outcome.FlipAveraged?.LogLoss,
            ["testRows"] = outcome.Rows,
            ["trainSeconds"] = history.TrainSeconds,
            ["evaluationSeconds"] = outcome.EvaluationSeconds,
            ["evaluationSecondsFlipAveraged"] = outcome.FlipAveragedEvaluationSeconds,
            ["epochs"] = history.Epochs.Count,
            ["steps"] = history.TotalSteps,
            ["trainRows"] = history.TrainingRows,
            ["diverged"] = history.Diverged,
            ["stoppedByTimeBudget"] = history.StoppedByTimeBudget,
            ["peakWorkingSetBytes"] = outcome.PeakWorkingSet,
            ["managedHeapBytes"] = outcome.ManagedHeap,
            ["managedHeapSizeAtLastGcBytes"] = outcome.ManagedHeapAtLastGc,
            ["parameters"] = network.parameters().Sum(t => t.numel()),
            ["commandLine"] = string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            ["threads"] = options.Threads ?? Environment.ProcessorCount,
            ["architecture"] = JsonNode.Parse(model.Architecture.ToJson()),
            ["trainerOptions"] = JsonSerializer.SerializeToNode(options.Trainer, MetricsJson),
            ["history"] = JsonNode.Parse(history.ToJson()),
        };
        File.WriteAllText(metricsPath, metrics.ToJsonString(MetricsJson));
        if (!quiet)
            AnsiConsole.MarkupLine($"metrics written to {Markup.Escape(Path.GetFullPath(metricsPath))}");
    }

    private static string F4(double value) => value.ToString("0.0000", CultureInfo.InvariantCulture);
}
