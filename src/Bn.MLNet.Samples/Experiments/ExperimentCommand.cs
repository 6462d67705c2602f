using System.CommandLine;
using System.Diagnostics;
using Bn.MLNet.Samples.Commands;
using Spectre.Console;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// <c>experiment NAME [--quick] [--out DIR]</c>: reruns one of the paper's claims on Fashion-MNIST and writes
/// report.md, CSV of every curve and PNG plots.
/// </summary>
internal static class ExperimentCommand
{
    /// <summary>The experiments by name, with a one-line description.</summary>
    public static readonly IReadOnlyDictionary<string, (string Description, Action<ExperimentContext> Run)> Experiments =
        new Dictionary<string, (string, Action<ExperimentContext>)>(StringComparer.OrdinalIgnoreCase)
        {
            ["figure1"] = ("the paper's figure 1: MLP 3×100 sigmoid with and without BN, accuracy and sigmoid-input percentiles", Figure1Experiment.Run),
            ["learning-rates"] = ("figure 2 / table 2 pattern: no BN vs BN at ×1, ×5, ×30, and sigmoid with and without BN", LearningRatesExperiment.Run),
            ["small-batch"] = ("BN's small-batch limit: batch sizes 2..64 with Batch, Group and Layer normalization", SmallBatchExperiment.Run),
            ["inference-modes"] = ("running averages vs population statistics (Algorithm 2) vs folded BN: accuracy and throughput", InferenceModesExperiment.Run),
            ["regularization"] = ("train/test gap with and without BN, dropout off", RegularizationExperiment.Run),
            ["deep-sigmoid"] = ("sec. 4.2.1/4.2.2 at depth: sigmoid MLPs of 2..12 layers with and without BN at ×1 and ×5", DeepSigmoidExperiment.Run),
        };

    private static readonly Argument<string> NameArgument = new("NAME")
    {
        Description = "Experiment: " + string.Join(", ", Experiments.Keys) + ".",
    };

    private static readonly Option<bool> QuickOption = new("--quick")
    {
        Description = "Use the short smoke-test budget (a few minutes); the full budget is what the README quotes.",
    };

    private static readonly Option<string?> OutOption = new("--out")
    {
        Description = "Output folder (default: runs/experiments/NAME[-quick]).",
        HelpName = "DIR",
    };

    private static readonly Option<string?> DataOption = SharedOptions.DataDirectory();

    private static readonly Option<int?> ThreadsOption = new("--threads")
    {
        Description = "libtorch threads (default: all cores).",
        HelpName = "N",
    };

    private static readonly Option<int> SeedOption = new("--seed")
    {
        Description = "Seed of every run.",
        DefaultValueFactory = _ => 1,
    };

    public static Command Create()
    {
        NameArgument.AcceptOnlyFromAmong(Experiments.Keys.ToArray());
        ThreadsOption.AtLeast(1);
        var command = new Command("experiment", "Reproduce one of the paper's claims on Fashion-MNIST: report.md, CSV and PNG plots.");
        command.Add(NameArgument);
        command.Add(QuickOption);
        command.Add(OutOption);
        command.Add(DataOption);
        command.Add(ThreadsOption);
        command.Add(SeedOption);
        command.SetAction((p, _) => Task.Run(() => Run(p.GetValue(NameArgument)!, p.GetValue(QuickOption), p.GetValue(OutOption), p.GetValue(DataOption), p.GetValue(ThreadsOption), p.GetValue(SeedOption))));
        return command;
    }

    /// <summary>Runs one experiment and returns the process exit code.</summary>
    public static int Run(string name, bool quick, string? outDir, string? dataDir, int? threads, int seed)
    {
        var (_, run) = Experiments[name];
        string output = Path.GetFullPath(outDir ?? Path.Combine("runs", "experiments", name + (quick ? "-quick" : "")));
        ExperimentContext ctx;
        try
        {
            ctx = new ExperimentContext(output, quick, dataDir, threads, seed, m => AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss}[/] {m}"));
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {ex.Message}");
            return 2;
        }

        var clock = Stopwatch.StartNew();
        AnsiConsole.MarkupLineInterpolated($"Experiment [bold]{name}[/]{(quick ? " (quick)" : "")}: writing to {output}");
        run(ctx);
        AnsiConsole.MarkupLineInterpolated($"Done in {clock.Elapsed.TotalMinutes:F1} min. Report: {Path.Combine(output, "report.md")}");
        return 0;
    }
}
