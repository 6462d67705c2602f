using System.CommandLine;
using System.CommandLine.Parsing;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// The <c>train</c> command's options and their one mapping onto <see cref="BatchNormCnnOptions"/>: every default is
/// the library's (read from a <see cref="BatchNormCnnOptions"/>) with the natural-image recipe on, except the seed
/// (1; the library draws one from the MLContext) and <c>--bf16</c> (on when the CPU has bfloat16 instructions).
/// </summary>
internal static class TrainCommandOptions
{
    /// <summary>The command's defaults: the library's, with the natural-image recipe.</summary>
    internal static readonly BatchNormCnnOptions Defaults = WithRecipe(new BatchNormCnnOptions());

    /// <summary>The epoch cap when --time-budget is given without --epochs: high enough that the budget ends training.</summary>
    internal const int EpochsUnderTimeBudget = 1000;

    /// <summary>The seed when --seed is not given.</summary>
    internal const int DefaultSeed = 1;

    internal static readonly Option<string?> Data = SharedOptions.DataDirectory();
    internal static readonly Option<int?> TrainLimit = SharedOptions.TrainLimit();
    internal static readonly Option<int?> TestLimit = new("--test-limit") { Description = "Evaluate on only the first N test rows (default: all 10,000).", HelpName = "N" };
    internal static readonly Option<int> Validation = new("--validation")
    {
        Description = "Hold out the last N training rows as validation data (Fit(train, validation)), evaluated every epoch; the best epoch's weights are kept (0 = none).",
        HelpName = "N",
        DefaultValueFactory = _ => 0,
    };

    internal static readonly Option<int?> Patience = new("--patience") { Description = "With --validation: stop after this many epochs without validation improvement.", HelpName = "EPOCHS" };
    internal static readonly Option<string> Conv = new("--conv")
    {
        Description = "Convolution stages: CHANNELSxREPEATS per stage, comma-separated, each ending with 2x2 max-pooling unless suffixed ':nopool'; 'none' for an MLP.",
        HelpName = "STAGES",
        DefaultValueFactory = _ => ArchitectureSpec.FormatStages(Defaults.Network.ConvStages),
    };

    internal static readonly Option<string> Hidden = new("--hidden")
    {
        Description = "Hidden fully-connected widths, comma-separated, or 'none'.",
        HelpName = "WIDTHS",
        DefaultValueFactory = _ => ArchitectureSpec.FormatHidden(Defaults.Network.HiddenLayers),
    };

    internal static readonly Option<double> Dropout = new("--dropout") { Description = "Dropout probability after each hidden layer.", DefaultValueFactory = _ => Defaults.Dropout };
    internal static readonly Option<bool?> BFloat16 = new("--bf16")
    {
        Description = "Mixed-precision training: convolutions compute in bfloat16 (float32 weights; scoring stays float32). "
            + "Default: on when bfloat16 convolutions measure at least 1.1x as fast as float32 on this machine (BFloat16Support.IsFasterThanFloat32), off elsewhere; --bf16 true|false forces it.",
    };

    internal static readonly Option<bool> PaperMlp = new("--paper-mlp")
    {
        Description = "Use the paper's MNIST network (3 hidden layers of 100 sigmoid units, no convolution); overrides --conv, --hidden, --dropout and --activation.",
    };

    internal static readonly Option<NormalizationKind> Normalization = new("--normalization", "-n")
    {
        Description = "Batch (this library's BN), BatchNative (TorchSharp's), None (the paper's baseline), Group, Layer, or BatchRenorm (Batch Renormalization, Ioffe 2017).",
        DefaultValueFactory = _ => Defaults.Normalization,
    };

    internal static readonly Option<ActivationKind> Activation = new("--activation", "-a") { Description = "ReLU, Sigmoid or Tanh.", DefaultValueFactory = _ => Defaults.Activation };
    internal static readonly Option<OptimizerKind> Optimizer = new("--optimizer", "-o") { Description = "Sgd (with --momentum, Nesterov unless --no-nesterov), Adam or AdamW.", DefaultValueFactory = _ => Defaults.Optimizer };
    internal static readonly Option<double> LearningRate = new("--lr") { Description = "Base (peak, for one-cycle) learning rate.", DefaultValueFactory = _ => Defaults.LearningRate };
    internal static readonly Option<double> LrMultiplier = new("--lr-multiplier") { Description = "Multiplies --lr (the paper's x5 and x30 runs).", DefaultValueFactory = _ => Defaults.LearningRateMultiplier };
    internal static readonly Option<LearningRateScheduleKind> Schedule = new("--schedule") { Description = "Constant, Step, Cosine or OneCycle.", DefaultValueFactory = _ => Defaults.Schedule };
    internal static readonly Option<double> Momentum = new("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => Defaults.Momentum };
    internal static readonly Option<bool> NoNesterov = new("--no-nesterov") { Description = "Use classical instead of Nesterov momentum with SGD." };
    internal static readonly Option<double> WeightDecay = new("--weight-decay") { Description = "Weight decay (L2 for SGD/Adam, decoupled for AdamW).", DefaultValueFactory = _ => Defaults.WeightDecay };
    internal static readonly Option<bool> NoRecipe = new("--no-recipe")
    {
        Description = "Train without the natural-image recipe (random crops, horizontal flips, label smoothing 0.1): the library's defaults, which leave the data and the loss as they are. --crop-padding, --no-flip and --label-smoothing still apply.",
    };

    internal static readonly Option<double> LabelSmoothing = new("--label-smoothing") { Description = "Label smoothing of the cross-entropy loss (0 = off).", DefaultValueFactory = _ => Defaults.LabelSmoothing };
    internal static readonly Option<int?> Epochs = new("--epochs", "-e")
    {
        Description = $"Passes over the training data. Default {Defaults.Epochs}; with --time-budget, as many as the budget allows (at most {EpochsUnderTimeBudget}).",
    };

    internal static readonly Option<long?> MaxSteps = new("--max-steps") { Description = "Optimizer step budget; overrides --epochs.", HelpName = "STEPS" };
    internal static readonly Option<double?> TimeBudget = new("--time-budget")
    {
        Description = "Wall-clock budget for training in seconds: cosine/one-cycle schedules advance with time as well as steps, and training stops (annealed) when it runs out.",
        HelpName = "SECONDS",
    };

    internal static readonly Option<int> BatchSize = new("--batch-size", "-b") { Description = "Rows per training mini-batch.", DefaultValueFactory = _ => Defaults.BatchSize };
    internal static readonly Option<int> CropPadding = new("--crop-padding")
    {
        Description = "Random-crop augmentation: zero-pad each side by this many pixels and crop back at a random offset (0 = off).",
        DefaultValueFactory = _ => Defaults.RandomCropPadding,
    };

    internal static readonly Option<bool> NoFlip = new("--no-flip") { Description = "Disable horizontal-flip augmentation." };
    internal static readonly Option<double> Erasing = new("--erasing")
    {
        Description = "Random-erasing augmentation: probability that a training image gets a random rectangle (2-25% of its area) set to the input mean (0 = off).",
        HelpName = "P",
        DefaultValueFactory = _ => Defaults.RandomErasingProbability,
    };

    internal static readonly Option<double?> Ema = new("--ema")
    {
        Description = "Exponential moving average of the weights with this decay, in (0, 1) (warm-up min(decay, (1+t)/(10+t))); validation and the final model use the average. Default: off.",
        HelpName = "DECAY",
        DefaultValueFactory = _ => Defaults.WeightAveragingDecay,
    };

    internal static readonly Option<int> Seed = new("--seed")
    {
        Description = "Seed for initialization, shuffling, dropout and augmentation (the library's BatchNormCnnOptions.Seed instead defaults to one drawn from the MLContext).",
        DefaultValueFactory = _ => DefaultSeed,
    };

    internal static readonly Option<int?> Threads = new("--threads", "-t") { Description = "libtorch threads (default: all cores).", HelpName = "N" };
    internal static readonly Option<int> ShuffleBuffer = new("--shuffle-buffer") { Description = "Rows held by the streaming shuffle buffer.", HelpName = "ROWS", DefaultValueFactory = _ => Defaults.ShuffleBufferSize };
    internal static readonly Option<int> LogEvery = new("--log-every")
    {
        Description = "Record loss, accuracy, learning rate and layer-input percentiles every K steps.",
        HelpName = "K",
        DefaultValueFactory = _ => Defaults.Trainer.LogEverySteps,
    };

    internal static readonly Option<string?> CheckpointDir = new("--checkpoint-dir")
    {
        Description = "Write a checkpoint after every epoch into DIR; when DIR already holds one, training resumes from it (with the same options), "
            + "or returns the finished run's model. The same options and data must be given again.",
        HelpName = "DIR",
    };

    internal static readonly Option<string?> InitModel = new("--init-model")
    {
        Description = "Start from a trained model zip (what --model writes): training continues from its weights and input standardization; "
            + "the network is the model's (--conv, --hidden, --dropout, --activation, --normalization and --paper-mlp do not apply).",
        HelpName = "PATH",
    };

    internal static readonly Option<string?> Model = new("--model") { Description = "Save the trained model as an ML.NET model zip (the format the main job writes; evaluate and predict read it).", HelpName = "PATH" };
    internal static readonly Option<string?> MetricsOut = new("--metrics-out")
    {
        Description = "Write JSON with testAccuracy, testLoss, testAccuracyFlipAveraged (test-time flip averaging), trainSeconds, epochs, memory, the settings and the full history.",
        HelpName = "FILE",
    };

    internal static readonly Option<string?> HistoryCsv = new("--history-csv") { Description = "Write the training history (epoch and step rows, layer-input percentiles) as CSV.", HelpName = "FILE" };
    internal static readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "No progress display; print only the result." };

    /// <summary>Every option, in help order.</summary>
    internal static readonly Option[] All =
    {
        Data, TrainLimit, TestLimit, Validation, Patience,
        Conv, Hidden, Dropout, PaperMlp, BFloat16, Normalization, Activation,
        Optimizer, LearningRate, LrMultiplier, Schedule, Momentum, NoNesterov, WeightDecay, NoRecipe, LabelSmoothing,
        Epochs, MaxSteps, TimeBudget, BatchSize, CropPadding, NoFlip, Erasing, Ema, Seed, Threads, ShuffleBuffer, LogEvery,
        CheckpointDir, InitModel, Model, MetricsOut, HistoryCsv, Quiet,
    };

    /// <summary>--bf16 when given; otherwise on exactly when bfloat16 convolutions train faster here (measured once).</summary>
    internal static bool EffectiveBFloat16(bool? requested) => requested ?? BFloat16Support.IsFasterThanFloat32;

    /// <summary>--epochs when given; otherwise the library's default, or <see cref="EpochsUnderTimeBudget"/> under a time budget.</summary>
    internal static int EffectiveEpochs(int? epochs, double? timeBudgetSeconds) =>
        epochs ?? (timeBudgetSeconds is null ? Defaults.Epochs : EpochsUnderTimeBudget);

    /// <summary>Whether the planned epochs are only the cap under a time budget (no --epochs given), so the budget alone ends training.</summary>
    internal static bool EpochsAreOnlyTheCap(int plannedEpochs, double? timeBudgetSeconds) =>
        timeBudgetSeconds is not null && plannedEpochs >= EpochsUnderTimeBudget;

    /// <summary>Whether the natural-image recipe is on for this command line.</summary>
    internal static bool UsesRecipe(ParseResult p) => !p.GetValue(NoRecipe);

    /// <summary>Whether the convolution precision was left to <see cref="EffectiveBFloat16"/>'s measurement (no --bf16 given).</summary>
    internal static bool ChoosesBFloat16(ParseResult p) => p.GetValue(BFloat16) is null;

    /// <summary>The estimator's settings for this command line (the one mapping of the CLI onto the library).</summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="FormatException">--conv or --hidden cannot be parsed.</exception>
    internal static BatchNormCnnOptions ToOptions(ParseResult p)
    {
        var o = new BatchNormCnnOptions { FeatureColumnName = FashionMnist.FeaturesColumnName, LabelColumnName = FashionMnist.LabelColumnName };
        if (UsesRecipe(p))
            WithRecipe(o);
        o.Network = Architecture(p);
        TrainerOptions t = o.Trainer;
        double? budget = p.GetValue(TimeBudget);
        (t.Epochs, t.MaxSteps, t.TimeBudget) = (EffectiveEpochs(p.GetValue(Epochs), budget), p.GetValue(MaxSteps), budget is double s ? TimeSpan.FromSeconds(s) : null);
        (t.BatchSize, t.Optimizer, t.LearningRate, t.LearningRateMultiplier) = (p.GetValue(BatchSize), p.GetValue(Optimizer), p.GetValue(LearningRate), p.GetValue(LrMultiplier));
        (t.Schedule, t.Momentum, t.WeightDecay) = (p.GetValue(Schedule), p.GetValue(Momentum), p.GetValue(WeightDecay));
        t.Nesterov = Defaults.Nesterov && !p.GetValue(NoNesterov) && !(t.Optimizer == OptimizerKind.Sgd && t.Momentum == 0);
        if (Given(p, LabelSmoothing))
            t.LabelSmoothing = p.GetValue(LabelSmoothing);
        if (Given(p, CropPadding))
            t.RandomCropPadding = p.GetValue(CropPadding);
        if (p.GetValue(NoFlip))
            t.HorizontalFlip = false;
        (t.RandomErasingProbability, t.WeightAveragingDecay, t.EarlyStoppingPatience) = (p.GetValue(Erasing), p.GetValue(Ema), p.GetValue(Patience));
        (t.Seed, t.Threads, t.LogEverySteps, t.RecordPercentiles) = (p.GetValue(Seed), p.GetValue(Threads), p.GetValue(LogEvery), true);
        t.CheckpointDirectory = p.GetValue(CheckpointDir);
        o.ShuffleBufferSize = p.GetValue(ShuffleBuffer);
        return o;
    }

    private static BatchNormCnnOptions WithRecipe(BatchNormCnnOptions o)
    {
        o.Trainer.UseNaturalImageRecipe();
        return o;
    }

    private static NetworkArchitecture Architecture(ParseResult p)
    {
        NetworkArchitecture a;
        if (p.GetValue(PaperMlp))
        {
            a = NetworkArchitecture.PaperMnistMlp();
        }
        else
        {
            a = NetworkArchitecture.Default();
            a.ConvStages = ArchitectureSpec.ParseStages(p.GetValue(Conv) ?? string.Empty);
            a.HiddenLayers = ArchitectureSpec.ParseHidden(p.GetValue(Hidden) ?? string.Empty);
            a.Dropout = p.GetValue(Dropout);
            a.Activation = p.GetValue(Activation);
        }

        (a.InputChannels, a.InputHeight, a.InputWidth) = (1, FashionMnist.ImageRows, FashionMnist.ImageColumns);
        a.Normalization = p.GetValue(Normalization);
        a.BFloat16Convolutions = EffectiveBFloat16(p.GetValue(BFloat16));
        return a;
    }

    /// <summary>Whether the command line gives <paramref name="option"/> (not only its default).</summary>
    private static bool Given(ParseResult p, Option option) => p.GetResult(option) is { Implicit: false };
}
