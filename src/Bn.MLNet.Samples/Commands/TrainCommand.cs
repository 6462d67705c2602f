using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Spectre.Console;
using TorchSharp;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>train</c>: trains a BN CNN on Fashion-MNIST (bundled, or <c>--data DIR</c>) streaming from an ML.NET IDataView, then
/// evaluates it on the test set. Defaults are the configuration chosen for accuracy per CPU minute.
/// </summary>
internal static class TrainCommand
{
    /// <summary>The library's defaults, which are this command's defaults too (written once, in BatchNormCnnOptions).</summary>
    private static readonly BatchNormCnnOptions Defaults = new();

    private static readonly Option<string?> DataOption = SharedOptions.DataDirectory();

    private static readonly Option<int?> TrainLimitOption = SharedOptions.TrainLimit();

    private static readonly Option<int?> TestLimitOption = new("--test-limit")
    {
        Description = "Evaluate on only the first N test rows (default: all 10,000).",
        HelpName = "N",
    };

    private static readonly Option<int> ValidationOption = new("--validation")
    {
        Description = "Hold out the last N training rows as a validation set, evaluated every epoch; the best epoch's weights are kept (0 = none).",
        HelpName = "N",
        DefaultValueFactory = _ => 0,
    };

    private static readonly Option<int?> PatienceOption = new("--patience")
    {
        Description = "With --validation: stop after this many epochs without validation improvement.",
        HelpName = "EPOCHS",
    };

    private static readonly Option<string> ConvOption = new("--conv")
    {
        Description = "Convolution stages: CHANNELSxREPEATS per stage, comma-separated, each ending with 2x2 max-pooling unless suffixed ':nopool'; 'none' for an MLP.",
        HelpName = "STAGES",
        DefaultValueFactory = _ => ArchitectureSpec.FormatStages(NetworkArchitecture.Default().ConvStages),
    };

    private static readonly Option<string> HiddenOption = new("--hidden")
    {
        Description = "Hidden fully-connected widths, comma-separated, or 'none'.",
        HelpName = "WIDTHS",
        DefaultValueFactory = _ => ArchitectureSpec.FormatHidden(NetworkArchitecture.Default().HiddenLayers),
    };

    private static readonly Option<double> DropoutOption = new("--dropout")
    {
        Description = "Dropout probability after each hidden layer.",
        DefaultValueFactory = _ => Defaults.Dropout,
    };

    private static readonly Option<bool?> BFloat16Option = new("--bf16")
    {
        Description = "Mixed-precision training: convolutions compute in bfloat16 (float32 weights; scoring stays float32). "
            + "Default: on when the CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16), off elsewhere; --bf16 true|false forces it.",
    };

    /// <summary>--bf16 when given; otherwise on exactly when this CPU computes bfloat16 natively.</summary>
    internal static bool EffectiveBFloat16(bool? requested) => requested ?? BFloat16Support.IsAccelerated;

    private static readonly Option<bool> PaperMlpOption = new("--paper-mlp")
    {
        Description = "Use the paper's MNIST network (3 hidden layers of 100 sigmoid units, no convolution); overrides --conv, --hidden, --dropout and --activation.",
    };

    private static readonly Option<NormalizationKind> NormalizationOption = new("--normalization", "-n")
    {
        Description = "Batch (this library's BN), BatchNative (TorchSharp's), None (the paper's baseline), Group, Layer, or BatchRenorm (Batch Renormalization, Ioffe 2017).",
        DefaultValueFactory = _ => Defaults.Normalization,
    };

    private static readonly Option<ActivationKind> ActivationOption = new("--activation", "-a")
    {
        Description = "ReLU, Sigmoid or Tanh.",
        DefaultValueFactory = _ => Defaults.Activation,
    };

    private static readonly Option<OptimizerKind> OptimizerOption = new("--optimizer", "-o")
    {
        Description = "Sgd (with --momentum, Nesterov unless --no-nesterov), Adam or AdamW.",
        DefaultValueFactory = _ => Defaults.Optimizer,
    };

    private static readonly Option<double> LearningRateOption = new("--lr")
    {
        Description = "Base (peak, for one-cycle) learning rate.",
        DefaultValueFactory = _ => Defaults.LearningRate,
    };

    private static readonly Option<double> LrMultiplierOption = new("--lr-multiplier")
    {
        Description = "Multiplies --lr (the paper's x5 and x30 runs).",
        DefaultValueFactory = _ => Defaults.LearningRateMultiplier,
    };

    private static readonly Option<LearningRateScheduleKind> ScheduleOption = new("--schedule")
    {
        Description = "Constant, Step, Cosine or OneCycle.",
        DefaultValueFactory = _ => Defaults.Schedule,
    };

    private static readonly Option<double> MomentumOption = new("--momentum")
    {
        Description = "SGD momentum.",
        DefaultValueFactory = _ => Defaults.Momentum,
    };

    private static readonly Option<bool> NoNesterovOption = new("--no-nesterov")
    {
        Description = "Use classical instead of Nesterov momentum with SGD.",
    };

    private static readonly Option<double> WeightDecayOption = new("--weight-decay")
    {
        Description = "Weight decay (L2 for SGD/Adam, decoupled for AdamW).",
        DefaultValueFactory = _ => Defaults.WeightDecay,
    };

    private static readonly Option<double> LabelSmoothingOption = new("--label-smoothing")
    {
        Description = "Label smoothing of the cross-entropy loss (0 = off).",
        DefaultValueFactory = _ => Defaults.LabelSmoothing,
    };

    private static readonly Option<int?> EpochsOption = new("--epochs", "-e")
    {
        Description = $"Passes over the training data. Default {Defaults.Epochs}; with --time-budget, as many as the budget allows (at most {EpochsUnderTimeBudget}).",
    };

    /// <summary>The epoch cap when --time-budget is given without --epochs: high enough that the budget ends training.</summary>
    internal const int EpochsUnderTimeBudget = 1000;

    /// <summary>--epochs when given; otherwise the library's default, or <see cref="EpochsUnderTimeBudget"/> under a time budget.</summary>
    internal static int EffectiveEpochs(int? epochs, double? timeBudgetSeconds) =>
        epochs ?? (timeBudgetSeconds is null ? Defaults.Epochs : EpochsUnderTimeBudget);

    private static readonly Option<long?> MaxStepsOption = new("--max-steps")
    {
        Description = "Optimizer step budget; overrides --epochs.",
        HelpName = "STEPS",
    };

    private static readonly Option<double?> TimeBudgetOption = new("--time-budget")
    {
        Description = "Wall-clock budget for training in seconds: cosine/one-cycle schedules advance with time as well as steps, and training stops (annealed) when it runs out.",
        HelpName = "SECONDS",
    };

    private static readonly Option<int> BatchSizeOption = new("--batch-size", "-b")
    {
        Description = "Rows per training mini-batch.",
        DefaultValueFactory = _ => Defaults.BatchSize,
    };

    private static readonly Option<int> CropPaddingOption = new("--crop-padding")
    {
        Description = "Random-crop augmentation: zero-pad each side by this many pixels and crop back at a random offset (0 = off).",
        DefaultValueFactory = _ => Defaults.RandomCropPadding,
    };

    private static readonly Option<bool> NoFlipOption = new("--no-flip")
    {
        Description = "Disable horizontal-flip augmentation.",
    };

    private static readonly Option<double> ErasingOption = new("--erasing")
    {
        Description = "Random-erasing augmentation: probability that a training image gets a random rectangle (2-25% of its area) set to the input mean (0 = off).",
        HelpName = "P",
        DefaultValueFactory = _ => Defaults.RandomErasingProbability,
    };

    private static readonly Option<double?> EmaOption = new("--ema")
    {
        Description = "Exponential moving average of the weights with this decay, in (0, 1) (warm-up min(decay, (1+t)/(10+t))); validation and the final model use the average. Default: off.",
        HelpName = "DECAY",
        DefaultValueFactory = _ => Defaults.WeightAveragingDecay,
    };

    private static readonly Option<int> SeedOption = new("--seed")
    {
        Description = "Seed for initialization, shuffling, dropout and augmentation (the library's BatchNormCnnOptions.Seed instead defaults to one drawn from the MLContext).",
        DefaultValueFactory = _ => 1,
    };

    private static readonly Option<int?> ThreadsOption = new("--threads", "-t")
    {
        Description = "libtorch threads (default: all cores).",
        HelpName = "N",
    };

    private static readonly Option<int> ShuffleBufferOption = new("--shuffle-buffer")
    {
        Description = "Rows held by the streaming shuffle buffer.",
        HelpName = "ROWS",
        DefaultValueFactory = _ => Defaults.ShuffleBufferSize,
    };

    private static readonly Option<int> LogEveryOption = new("--log-every")
    {
        Description = "Record loss, accuracy, learning rate and layer-input percentiles every K steps.",
        HelpName = "K",
        DefaultValueFactory = _ => 50,
    };

    private static readonly Option<string?> ModelOption = new("--model")
    {
        Description = "Save the trained model as an ML.NET model zip (the format the main job writes; evaluate and predict read it).",
        HelpName = "PATH",
    };

    private static readonly Option<string?> MetricsOutOption = new("--metrics-out")
    {
        Description = "Write JSON with testAccuracy, testLoss, testAccuracyFlipAveraged (test-time flip averaging), trainSeconds, epochs, memory, the settings and the full history.",
        HelpName = "FILE",
    };

    private static readonly Option<string?> HistoryCsvOption = new("--history-csv")
    {
        Description = "Write the training history (epoch and step rows, layer-input percentiles) as CSV.",
        HelpName = "FILE",
    };

    private static readonly Option<bool> QuietOption = new("--quiet", "-q")
    {
        Description = "No progress display; print only the result.",
    };

    /// <summary>Builds the <c>train</c> command.</summary>
    public static Command Create()
    {
        var command = new Command("train", "Train the BN CNN on Fashion-MNIST and evaluate it on the test set. " +
            "The defaults are the library's (BatchNormCnnOptions), except --seed (the library draws one from the MLContext) and --bf16 (on when the CPU has bfloat16 instructions).");
        Option[] options =
        {
            DataOption, TrainLimitOption, TestLimitOption, ValidationOption, PatienceOption,
            ConvOption, HiddenOption, DropoutOption, PaperMlpOption, BFloat16Option, NormalizationOption, ActivationOption,
            OptimizerOption, LearningRateOption, LrMultiplierOption, ScheduleOption, MomentumOption, NoNesterovOption,
            WeightDecayOption, LabelSmoothingOption, EpochsOption, MaxStepsOption, TimeBudgetOption, BatchSizeOption, CropPaddingOption, NoFlipOption,
            ErasingOption, EmaOption, SeedOption, ThreadsOption, ShuffleBufferOption, LogEveryOption, ModelOption, MetricsOutOption, HistoryCsvOption, QuietOption,
        };
        foreach (Option option in options)
        {
            command.Add(option);
        }

        command.SetAction((parse, cancellationToken) => Task.Run(() => Run(parse, cancellationToken), CancellationToken.None));
        return command;
    }

    private static int Run(ParseResult p, CancellationToken cancellationToken)
    {
        if (!TryReadSettings(p, out NetworkArchitecture architecture, out TrainerOptions options))
        {
            return 2;
        }

        bool quiet = p.GetValue(QuietOption);
        int seed = p.GetValue(SeedOption);
        var ml = new MLContext(seed);
        if (!TryLoadData(p, ml, seed, out TrainingData data))
        {
            return 3;
        }

        torch.manual_seed(seed);
        using var network = new BatchNormCnnNetwork(architecture);
        long parameterCount = network.parameters().Sum(t => t.numel());
        int threads = options.Threads ?? Environment.ProcessorCount;
        if (!quiet)
        {
            PrintSettings(data, architecture, options, parameterCount, threads);
        }

        var trainer = new Trainer(options);
        TrainingHistory history;
        try
        {
            history = TrainingConsole.Run(quiet, progress => trainer.Train(network, data.Train, data.Validation, progress, cancellationToken), options.TimeBudgetSeconds);
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Training cancelled.[/]");
            return 130;
        }

        TestOutcome outcome = EvaluateOnTest(network, data.Test, cancellationToken);
        PrintResults(outcome, history);
        string? modelPath = p.GetValue(ModelOption);
        if (modelPath is not null && !SaveModel(ml, network, history, modelPath))
        {
            return 3;
        }

        string? csvPath = p.GetValue(HistoryCsvOption);
        if (csvPath is not null)
        {
            history.SaveCsv(csvPath);
        }

        string? metricsPath = p.GetValue(MetricsOutOption);
        if (metricsPath is not null)
        {
            WriteMetrics(metricsPath, outcome, history, architecture, options, threads, parameterCount, quiet);
        }

        return history.Diverged ? 4 : 0;
    }

    /// <summary>The training, validation and test sources of one run, and the folder they were read from.</summary>
    private sealed record TrainingData(string DataDirectory, DataViewBatchSource Train, DataViewBatchSource? Validation, DataViewBatchSource Test);

    /// <summary>The test-set evaluation and the process's memory at the end of a run.</summary>
    private sealed record TestOutcome(EvaluationResult Result, double EvaluationSeconds, long PeakWorkingSet, long ManagedHeap, long ManagedHeapAtLastGc)
    {
        /// <summary>The test set scored with test-time flip averaging (null when the input is not an image).</summary>
        public EvaluationResult? FlipAveraged { get; init; }

        /// <summary>Seconds of the flip-averaged evaluation (null when not run).</summary>
        public double? FlipAveragedEvaluationSeconds { get; init; }
    }

    /// <summary>Reads the network and training settings; prints the problem and returns false when one is invalid.</summary>
    private static bool TryReadSettings(ParseResult p, out NetworkArchitecture architecture, out TrainerOptions options)
    {
        try
        {
            architecture = BuildArchitecture(p);
            architecture.Validate();
            options = BuildTrainerOptions(p);
            options.Validate();
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            AnsiConsole.MarkupLine($"[red]Invalid option:[/] {Markup.Escape(ex.Message)}");
            architecture = null!;
            options = null!;
            return false;
        }
    }

    private static TrainerOptions BuildTrainerOptions(ParseResult p)
    {
        var options = new TrainerOptions
        {
            Epochs = EffectiveEpochs(p.GetValue(EpochsOption), p.GetValue(TimeBudgetOption)),
            MaxSteps = p.GetValue(MaxStepsOption),
            TimeBudgetSeconds = p.GetValue(TimeBudgetOption),
            BatchSize = p.GetValue(BatchSizeOption),
            Optimizer = p.GetValue(OptimizerOption),
            LearningRate = p.GetValue(LearningRateOption),
            LearningRateMultiplier = p.GetValue(LrMultiplierOption),
            Schedule = p.GetValue(ScheduleOption),
            Momentum = p.GetValue(MomentumOption),
            Nesterov = Defaults.Nesterov && !p.GetValue(NoNesterovOption),
            WeightDecay = p.GetValue(WeightDecayOption),
            LabelSmoothing = p.GetValue(LabelSmoothingOption),
            Seed = p.GetValue(SeedOption),
            Threads = p.GetValue(ThreadsOption),
            RandomCropPadding = p.GetValue(CropPaddingOption),
            HorizontalFlip = Defaults.HorizontalFlip && !p.GetValue(NoFlipOption),
            RandomErasingProbability = p.GetValue(ErasingOption),
            WeightAveragingDecay = p.GetValue(EmaOption),
            EarlyStoppingPatience = p.GetValue(PatienceOption),
            LogEverySteps = p.GetValue(LogEveryOption),
        };
        if (options.Optimizer == OptimizerKind.Sgd && options.Momentum == 0)
        {
            options.Nesterov = false;
        }

        return options;
    }

    /// <summary>Loads Fashion-MNIST, holds out the validation rows, and opens the batch sources; prints the problem and returns false on failure.</summary>
    private static bool TryLoadData(ParseResult p, MLContext ml, int seed, out TrainingData data)
    {
        string? dataDir = p.GetValue(DataOption);
        int validationRows = p.GetValue(ValidationOption);
        IDataView trainView, testView;
        IDataView? validationView = null;
        try
        {
            dataDir ??= FashionMnist.FindDataDirectory();
            trainView = FashionMnist.LoadTrain(ml, dataDir, p.GetValue(TrainLimitOption));
            testView = FashionMnist.LoadTest(ml, dataDir, p.GetValue(TestLimitOption));
            if (validationRows > 0)
            {
                long total = trainView.GetRowCount() ?? throw new InvalidOperationException("The training view has no row count.");
                if (validationRows >= total - 1)
                {
                    throw new ArgumentException($"--validation {validationRows} leaves too few of the {total} training rows.");
                }

                validationView = ml.Data.SkipRows(trainView, total - validationRows);
                trainView = ml.Data.TakeRows(trainView, total - validationRows);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot load Fashion-MNIST:[/] {Markup.Escape(ex.Message)}");
            data = null!;
            return false;
        }

        int shuffleBuffer = p.GetValue(ShuffleBufferOption);
        var train = new DataViewBatchSource(trainView, FashionMnist.FeaturesColumnName, FashionMnist.LabelColumnName, FashionMnist.FeatureLength, shuffleBuffer, seed);
        var test = new DataViewBatchSource(testView, FashionMnist.FeaturesColumnName, FashionMnist.LabelColumnName, FashionMnist.FeatureLength, shuffleBuffer, seed);
        DataViewBatchSource? validation = validationView is null
            ? null
            : new DataViewBatchSource(validationView, FashionMnist.FeaturesColumnName, FashionMnist.LabelColumnName, FashionMnist.FeatureLength, shuffleBuffer, seed);
        data = new TrainingData(dataDir, train, validation, test);
        return true;
    }

    private static void PrintSettings(TrainingData data, NetworkArchitecture architecture, TrainerOptions options, long parameterCount, int threads)
    {
        AnsiConsole.MarkupLine($"[bold]Bn.MLNet train[/]  data {Markup.Escape(data.DataDirectory)}  rows {data.Train.RowCount}{(data.Validation is null ? string.Empty : $" (+{data.Validation.RowCount} validation)")}  test {data.Test.RowCount}");
        AnsiConsole.MarkupLine($"network  {Markup.Escape(ArchitectureSpec.Format(architecture))}  ({parameterCount:N0} parameters){(architecture.BFloat16Convolutions ? "  bfloat16 convolutions in training" : string.Empty)}");
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"training {options.Optimizer}{(options.Optimizer == OptimizerKind.Sgd ? (options.Nesterov ? " Nesterov" : string.Empty) + $" momentum {options.Momentum}" : string.Empty)} lr {options.LearningRate}x{options.LearningRateMultiplier} {options.Schedule}, wd {options.WeightDecay}, batch {options.BatchSize}, {Length(options)}, crop {options.RandomCropPadding} flip {options.HorizontalFlip} erasing {options.RandomErasingProbability}{(options.WeightAveragingDecay is double ema ? $" ema {ema}" : string.Empty)}, smoothing {options.LabelSmoothing}, seed {options.Seed}, {threads} threads")));
    }

    /// <summary>How long training runs: steps or epochs, "or S s" under a time budget, or "until S s" when only the budget limits it.</summary>
    private static string Length(TrainerOptions o)
    {
        string budget = o.TimeBudgetSeconds is double b ? b.ToString(CultureInfo.InvariantCulture) + " s" : string.Empty;
        string planned = o.MaxSteps is long steps ? $"{steps} steps" : $"{o.Epochs} epochs";
        if (budget.Length == 0)
            return planned;
        return o.MaxSteps is null && EpochsAreOnlyTheCap(o.Epochs, o.TimeBudgetSeconds) ? $"until {budget}" : $"{planned} or {budget}";
    }

    /// <summary>Whether the planned epochs are only the cap under a time budget (no --epochs given), so the budget alone ends training.</summary>
    internal static bool EpochsAreOnlyTheCap(int plannedEpochs, double? timeBudgetSeconds) =>
        timeBudgetSeconds is not null && plannedEpochs >= EpochsUnderTimeBudget;

    private static TestOutcome EvaluateOnTest(BatchNormCnnNetwork network, DataViewBatchSource test, CancellationToken cancellationToken)
    {
        var evalClock = Stopwatch.StartNew();
        EvaluationResult result = Evaluation.Evaluate(network, test, cancellationToken: cancellationToken);
        double evalSeconds = evalClock.Elapsed.TotalSeconds;
        var flipClock = Stopwatch.StartNew();
        EvaluationResult? flipAveraged = network.Architecture.InputWidth >= 2
            ? Evaluation.Evaluate(network, test, cancellationToken: cancellationToken, testTimeFlipAveraging: true)
            : null;
        double flipSeconds = flipClock.Elapsed.TotalSeconds;
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return new TestOutcome(result, evalSeconds, process.PeakWorkingSet64, GC.GetTotalMemory(forceFullCollection: false),
            GC.GetGCMemoryInfo(GCKind.Any).HeapSizeBytes) { FlipAveraged = flipAveraged, FlipAveragedEvaluationSeconds = flipAveraged is null ? null : flipSeconds };
    }

    private static void PrintResults(TestOutcome outcome, TrainingHistory history)
    {
        var table = new Table().AddColumn("metric").AddColumn("value");
        table.AddRow("test accuracy", outcome.Result.Accuracy.ToString("0.0000", CultureInfo.InvariantCulture));
        table.AddRow("test loss", outcome.Result.Loss.ToString("0.0000", CultureInfo.InvariantCulture));
        if (outcome.FlipAveraged is EvaluationResult flip)
        {
            table.AddRow("test accuracy, flip-averaged", flip.Accuracy.ToString("0.0000", CultureInfo.InvariantCulture));
        }

        table.AddRow("train seconds", history.TrainSeconds.ToString("0.0", CultureInfo.InvariantCulture));
        table.AddRow("epochs / steps", $"{history.Epochs.Count} / {history.TotalSteps}");
        if (history.BestEpoch is int best)
        {
            table.AddRow("best epoch", $"{best + 1}{(history.RestoredBestWeights ? " (weights restored)" : string.Empty)}{(history.StoppedEarly ? ", stopped early" : string.Empty)}");
        }

        if (history.StoppedByTimeBudget)
        {
            table.AddRow("time budget", "reached: training stopped before the planned steps");
        }

        if (history.Divergence is DivergenceInfo d)
        {
            table.AddRow("[red]diverged[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"step {d.Step} (epoch {d.Epoch + 1}), lr {d.LearningRate:G4}, loss {d.Loss}")));
        }

        table.AddRow("peak working set", $"{outcome.PeakWorkingSet / (1024.0 * 1024.0):0} MB");
        table.AddRow("managed heap (end)", $"{outcome.ManagedHeap / (1024.0 * 1024.0):0} MB");
        AnsiConsole.Write(table);
    }

    private static void WriteMetrics(string metricsPath, TestOutcome outcome, TrainingHistory history, NetworkArchitecture architecture,
        TrainerOptions options, int threads, long parameterCount, bool quiet)
    {
        var metrics = new JsonObject
        {
            ["testAccuracy"] = outcome.Result.Accuracy,
            ["testLoss"] = outcome.Result.Loss,
            ["testAccuracyFlipAveraged"] = outcome.FlipAveraged?.Accuracy,
            ["testLossFlipAveraged"] = outcome.FlipAveraged?.Loss,
            ["testRows"] = outcome.Result.Count,
            ["trainSeconds"] = history.TrainSeconds,
            ["evaluationSeconds"] = outcome.EvaluationSeconds,
            ["evaluationSecondsFlipAveraged"] = outcome.FlipAveragedEvaluationSeconds,
            ["epochs"] = history.Epochs.Count,
            ["steps"] = history.TotalSteps,
            ["trainRows"] = history.TrainingRows,
            ["diverged"] = history.Diverged,
            ["stoppedByTimeBudget"] = history.StoppedByTimeBudget,
            ["threads"] = threads,
            ["peakWorkingSetBytes"] = outcome.PeakWorkingSet,
            ["managedHeapBytes"] = outcome.ManagedHeap,
            ["managedHeapSizeAtLastGcBytes"] = outcome.ManagedHeapAtLastGc,
            ["parameters"] = parameterCount,
            ["commandLine"] = string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            ["architecture"] = JsonNode.Parse(architecture.ToJson()),
            ["trainerOptions"] = JsonSerializer.SerializeToNode(options, MetricsJson),
            ["history"] = JsonNode.Parse(history.ToJson()),
        };
        File.WriteAllText(metricsPath, metrics.ToJsonString(MetricsJson));
        if (!quiet)
        {
            AnsiConsole.MarkupLine($"metrics written to {Markup.Escape(Path.GetFullPath(metricsPath))}");
        }
    }

    /// <summary>
    /// Saves the network as the ML.NET model zip the main job writes (written beside the target, then moved over it,
    /// so a failed save leaves no half-written file).
    /// </summary>
    private static bool SaveModel(MLContext ml, BatchNormCnnNetwork network, TrainingHistory history, string modelPath)
    {
        string path = Path.GetFullPath(modelPath);
        string temp = path + ".partial";
        ITransformer model = SampleData.PipelineFromNetwork(ml, network, history);
        try
        {
            ml.Model.Save(model, SampleData.InputSchema(ml, network.Architecture.InputLength), temp);
            File.Move(temp, path, overwrite: true);
            AnsiConsole.MarkupLine($"model saved to {Markup.Escape(path)} (ML.NET model zip: evaluate --model and predict --model read it)");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot save the model to {Markup.Escape(path)}:[/] {Markup.Escape(ex.Message)}");
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }

            return false;
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    private static readonly JsonSerializerOptions MetricsJson = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    private static NetworkArchitecture BuildArchitecture(ParseResult p)
    {
        NetworkArchitecture a;
        if (p.GetValue(PaperMlpOption))
        {
            a = NetworkArchitecture.PaperMnistMlp();
        }
        else
        {
            a = NetworkArchitecture.Default();
            a.ConvStages = ArchitectureSpec.ParseStages(p.GetValue(ConvOption) ?? string.Empty);
            a.HiddenLayers = ArchitectureSpec.ParseHidden(p.GetValue(HiddenOption) ?? string.Empty);
            a.Dropout = p.GetValue(DropoutOption);
            a.Activation = p.GetValue(ActivationOption);
        }

        a.InputChannels = 1;
        a.InputHeight = FashionMnist.ImageRows;
        a.InputWidth = FashionMnist.ImageColumns;
        a.ClassCount = FashionMnist.ClassCount;
        a.Normalization = p.GetValue(NormalizationOption);
        a.BFloat16Convolutions = EffectiveBFloat16(p.GetValue(BFloat16Option));
        return a;
    }
}
