using System.CommandLine;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Commands;
using Bn.MLNet.Samples.Experiments;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.Samples;

/// <summary>The samples app's command line: options parse, bad ones fail with clear messages.</summary>
public class SamplesCliTests
{
    private static IReadOnlyList<string> Errors(params string[] args) =>
        Cli.CreateRootCommand().Parse(args).Errors.Select(e => e.Message).ToList();

    [Fact]
    public void ValidCommandLinesParse()
    {
        Assert.Empty(Errors());
        Assert.Empty(Errors("--epochs", "3", "--train-limit", "1000"));
        Assert.Empty(Errors("train", "--epochs", "2", "--batch-size", "64", "-n", "Group"));
        Assert.Empty(Errors("experiment", "figure1", "--quick"));
        Assert.Empty(Errors("bench", "--repeats", "3"));
    }

    [Theory]
    [InlineData("--epochs", "abc")]
    [InlineData("train", "--epochs", "two")]
    [InlineData("train", "--batch-size", "1.5")]
    [InlineData("bench", "--repeats", "x")]
    public void BadNumbersAreRefusedNamingTheValue(params string[] args)
    {
        var errors = Errors(args);
        Assert.NotEmpty(errors);
        Assert.Contains(errors, e => e.Contains(args[^1], StringComparison.Ordinal));
    }

    [Fact]
    public void OutOfRangeNumbersAreRefused()
    {
        Assert.Contains(Errors("--epochs", "0"), e => e.Contains("--epochs must be at least 1", StringComparison.Ordinal));
        Assert.Contains(Errors("experiment", "figure1", "--threads", "0"), e => e.Contains("--threads", StringComparison.Ordinal));
        Assert.Contains(Errors("evaluate", "--model", ThisAssemblyPath(), "--limit", "0"), e => e.Contains("--limit", StringComparison.Ordinal));
    }

    [Fact]
    public void MissingFilesAreRefusedNamingThem()
    {
        string missing = Path.Combine(Path.GetTempPath(), "bnmlnet-no-such-model.zip");
        Assert.Contains(Errors("evaluate", "--model", missing), e => e.Contains(missing, StringComparison.Ordinal));
        Assert.Contains(Errors("predict", "--model", ThisAssemblyPath(), "--image", "/no/such/image.png"), e => e.Contains("/no/such/image.png", StringComparison.Ordinal));
        Assert.NotEmpty(Errors("evaluate"));
        Assert.NotEmpty(Errors("predict", "--model", ThisAssemblyPath()));
    }

    [Fact]
    public void UnknownExperimentIsRefusedListingTheKnownOnes()
    {
        var errors = Errors("experiment", "figure9");
        Assert.Contains(errors, e => e.Contains("figure9", StringComparison.Ordinal) && e.Contains("learning-rates", StringComparison.Ordinal));
    }

    [Fact]
    public void EvaluateRefusesAFileThatIsNotAModel()
    {
        string notAModel = Path.Combine(Path.GetTempPath(), $"bnmlnet-not-a-model-{Environment.ProcessId}.zip");
        File.WriteAllText(notAModel, "not a zip");
        try
        {
            Assert.Equal(2, ModelCommands.Evaluate(notAModel, null, 10));
        }
        finally
        {
            File.Delete(notAModel);
        }
    }

    [Theory]
    [InlineData("not a zip", "its first bytes are neither a zip signature nor the network file header")]
    [InlineData("", "the file is empty")]
    public void AModelFileOfNeitherKindIsRefusedNamingTheFileAndBothFormats(string content, string why)
    {
        string path = Path.Combine(Path.GetTempPath(), $"bnmlnet-bad-model-{Environment.ProcessId}-{why.Length}.bin");
        File.WriteAllText(path, content);
        try
        {
            var ex = Assert.Throws<InvalidDataException>(() => ModelCommands.Load(new MLContext(), path));
            Assert.Equal($"'{path}' is neither an ML.NET model zip (what `train --model` and the main job write) nor a network saved with BatchNormCnnNetwork.Save ({why}).", ex.Message);
            Assert.Equal(2, ModelCommands.Evaluate(path, null, 10));
            Assert.Equal(2, ModelCommands.Predict(path, new[] { path }));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ATruncatedModelZipIsRefusedWithExitCode2()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bnmlnet-truncated-{Environment.ProcessId}.zip");
        File.WriteAllBytes(path, [(byte)'P', (byte)'K', 3, 4, 0, 0]);
        try
        {
            Assert.Equal(ModelCommands.ModelFileKind.MLNetZip, ModelCommands.Detect(path));
            var ex = Assert.Throws<InvalidDataException>(() => ModelCommands.Load(new MLContext(), path));
            Assert.StartsWith($"'{path}' starts as a zip archive but is not a readable one (truncated or damaged?): ", ex.Message);
            Assert.Equal(2, ModelCommands.Evaluate(path, null, 10));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TrainTakesItsDefaultsFromTheLibraryOptionsWithTheNaturalImageRecipe()
    {
        var defaults = new BatchNormCnnOptions().UseNaturalImageRecipe();
        var train = Cli.CreateRootCommand().Subcommands.Single(c => c.Name == "train");
        var parse = Cli.CreateRootCommand().Parse(["train"]);
        object? Value(string name) => parse.GetResult(train.Options.Single(o => o.Name == name)) is { } r ? r.GetValueOrDefault<object>() : null;
        Assert.Equal(defaults.LabelSmoothing, Value("--label-smoothing"));
        Assert.Equal(defaults.RandomCropPadding, Value("--crop-padding"));
        Assert.Equal(defaults.RandomErasingProbability, Value("--erasing"));
        Assert.Equal(defaults.WeightAveragingDecay, Value("--ema"));
        Assert.Null(Value("--epochs"));
        Assert.Equal(defaults.Epochs, TrainCommandOptions.EffectiveEpochs(null, null));
        Assert.Equal(TrainCommandOptions.EpochsUnderTimeBudget, TrainCommandOptions.EffectiveEpochs(null, 870));
        Assert.Equal(3, TrainCommandOptions.EffectiveEpochs(3, 870));
        Assert.Equal(defaults.BatchSize, Value("--batch-size"));
        Assert.Equal(defaults.LearningRate, Value("--lr"));
        Assert.Equal(defaults.WeightDecay, Value("--weight-decay"));
        Assert.Equal(defaults.Dropout, Value("--dropout"));

        // The options the command trains with: the recipe's, or the library's plain defaults with --no-recipe; the
        // augmentation flags still apply on top.
        var withRecipe = TrainCommandOptions.ToOptions(parse);
        Assert.True(withRecipe.HorizontalFlip);
        Assert.Equal(TrainerOptions.NaturalImageCropPadding, withRecipe.RandomCropPadding);
        Assert.Equal(TrainerOptions.NaturalImageLabelSmoothing, withRecipe.LabelSmoothing);
        Assert.True(withRecipe.Trainer.RecordPercentiles);
        var plain = TrainCommandOptions.ToOptions(Cli.CreateRootCommand().Parse(["train", "--no-recipe"]));
        Assert.False(plain.HorizontalFlip);
        Assert.Equal(0, plain.RandomCropPadding);
        Assert.Equal(0, plain.LabelSmoothing);
        var mixed = TrainCommandOptions.ToOptions(Cli.CreateRootCommand().Parse(["train", "--no-flip", "--label-smoothing", "0.05"]));
        Assert.False(mixed.HorizontalFlip);
        Assert.Equal(0.05, mixed.LabelSmoothing);
        Assert.Equal(TrainerOptions.NaturalImageCropPadding, mixed.RandomCropPadding);
        Assert.Null(withRecipe.CheckpointDirectory);
        Assert.Equal("ck", TrainCommandOptions.ToOptions(Cli.CreateRootCommand().Parse(["train", "--checkpoint-dir", "ck"])).CheckpointDirectory);
    }

    [Fact]
    public void Bf16DefaultsToTheCpusBFloat16SupportAndCanBeForced()
    {
        var train = Cli.CreateRootCommand().Subcommands.Single(c => c.Name == "train");
        bool? Parsed(params string[] args)
        {
            var parse = Cli.CreateRootCommand().Parse(["train", .. args]);
            Assert.Empty(parse.Errors);
            return parse.GetValue((Option<bool?>)train.Options.Single(o => o.Name == "--bf16"));
        }

        Assert.Null(Parsed());
        Assert.True(Parsed("--bf16"));
        Assert.True(Parsed("--bf16", "true"));
        Assert.False(Parsed("--bf16", "false"));
        Assert.Equal(BFloat16Support.IsFasterThanFloat32, TrainCommandOptions.EffectiveBFloat16(null));
        Assert.True(TrainCommandOptions.EffectiveBFloat16(true));
        Assert.False(TrainCommandOptions.EffectiveBFloat16(false));
        Assert.False(new BatchNormCnnOptions().BFloat16Convolutions);   // the library itself stays float32 unless asked
    }

    [Fact]
    public void ProgressUnderATimeBudgetCountsEpochsAndSecondsNotTheEpochCap()
    {
        TrainingProgress At(int plannedEpochs) =>
            new(2, plannedEpochs, 1200, plannedEpochs * 469L, 0.5, 0.9, 1000, 0.05, 123.4, true, null);

        Assert.StartsWith("epoch 3 (123/870 s) step 1200", TrainingConsole.Describe(At(TrainCommandOptions.EpochsUnderTimeBudget), 870));
        Assert.StartsWith("epoch 3/15 step 1200", TrainingConsole.Describe(At(15), 870));   // --epochs 15 --time-budget 870
        Assert.StartsWith("epoch 3/15 step 1200", TrainingConsole.Describe(At(15)));
        Assert.DoesNotContain("/1000", TrainingConsole.Describe(At(TrainCommandOptions.EpochsUnderTimeBudget), 870));
    }

    private static string ThisAssemblyPath() => typeof(SamplesCliTests).Assembly.Location;
}
