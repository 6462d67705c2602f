using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>fine-tune</c>: training that starts from a trained model (BatchNormCnnOptions.InitialModel), on Fashion-MNIST.
/// (1) Continue: a model trained on the first half of the training set, continued on the second half, against the
/// model before. (2) Fine-tune: a few hundred images of a new, smaller task (footwear: sandal, sneaker, ankle boot, from
/// the second half) learned from the first model's frozen convolution stages with a new output layer, against the same
/// network trained from scratch on the same images, both for the same epochs. Test accuracy on the test set (the
/// footwear test images for (2)).
/// </summary>
internal static class FineTuneCommand
{
    private static readonly Option<int> EpochsOption = new("--epochs") { Description = "Epochs of each training run.", DefaultValueFactory = _ => 3 };
    private static readonly Option<int> SmallOption = new("--small") { Description = "Training images of the small footwear task.", DefaultValueFactory = _ => 300 };
    private static readonly Option<int> SmallEpochsOption = new("--small-epochs") { Description = "Epochs of each run on the small task (both runs alike).", DefaultValueFactory = _ => 20 };
    private static readonly Option<string?> DataOption = SharedOptions.DataDirectory();
    private static readonly string[] Footwear = ["Sandal", "Sneaker", "Ankle boot"];

    public static Command Create()
    {
        var command = new Command("fine-tune", "Continue a Fashion-MNIST model on new data, and fine-tune its frozen features for a small new task (footwear), against training from scratch.");
        command.Add(EpochsOption);
        command.Add(SmallOption);
        command.Add(SmallEpochsOption);
        command.Add(DataOption);
        command.SetAction((p, ct) => Task.Run(() => Run(p.GetValue(EpochsOption), p.GetValue(SmallOption), p.GetValue(SmallEpochsOption), p.GetValue(DataOption), ct), CancellationToken.None));
        return command;
    }

    private static int Run(int epochs, int small, int smallEpochs, string? dataDir, CancellationToken cancellationToken)
    {
        var ml = new MLContext(seed: 1);
        IDataView train = SampleData.Load(ml, FashionMnistSplit.Train, dataDir, null);
        IDataView test = SampleData.Load(ml, FashionMnistSplit.Test, dataDir, null);
        ITransformer toKey = SampleData.ToKey(ml).Fit(train);
        IDataView firstHalf = toKey.Transform(ml.Data.TakeRows(train, 30_000)), secondHalf = toKey.Transform(ml.Data.SkipRows(train, 30_000));
        var table = new Table().Title("Training from a trained model (Fashion-MNIST)").AddColumn("run").AddColumn("training images").AddColumn("test accuracy").AddColumn("seconds");

        BatchNormCnnOptions Options() => new BatchNormCnnOptions { Epochs = epochs, Seed = 1, CancellationToken = cancellationToken }.UseNaturalImageRecipe();
        using var first = Fit(ml, Options(), firstHalf, table, "trained on the first half", toKey.Transform(test));
        var more = Options();
        more.InitialModel = first;
        Fit(ml, more, secondHalf, table, "continued on the second half (InitialModel)", toKey.Transform(test)).Dispose();

        // The small task: footwear only, its own three classes.
        ITransformer footKey = ml.Transforms.Conversion.MapValueToKey("Label", SampleData.ClassColumn).Fit(Footwear3(ml, test));
        IDataView smallTrain = footKey.Transform(ml.Data.TakeRows(Footwear3(ml, ml.Data.SkipRows(train, 30_000)), small));
        IDataView smallTest = footKey.Transform(Footwear3(ml, test));
        var tune = Options();
        (tune.InitialModel, tune.FreezeConvolutionStages, tune.Epochs) = (first, true, smallEpochs);
        Fit(ml, tune, smallTrain, table, "footwear: frozen convolution stages + new head", smallTest).Dispose();
        var scratch = Options();
        scratch.Epochs = smallEpochs;
        Fit(ml, scratch, smallTrain, table, "footwear: from scratch", smallTest).Dispose();
        AnsiConsole.Write(table);
        return 0;
    }

    private static BatchNormCnnTransformer Fit(MLContext ml, BatchNormCnnOptions options, IDataView train, Table table, string name, IDataView test)
    {
        var clock = Stopwatch.StartNew();
        BatchNormCnnTransformer model = ml.MulticlassClassification.Trainers.BatchNormCnn(options).Fit(train);
        double seconds = clock.Elapsed.TotalSeconds;
        double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        table.AddRow(Markup.Escape(name), model.TrainingHistory!.TrainingRows.ToString("N0", CultureInfo.InvariantCulture),
            accuracy.ToString("0.0000", CultureInfo.InvariantCulture), seconds.ToString("0", CultureInfo.InvariantCulture));
        AnsiConsole.MarkupLine(Markup.Escape($"{name}: test accuracy {accuracy:0.0000} ({seconds:0} s)"));
        return model;
    }

    /// <summary>The footwear rows of a text-class view.</summary>
    private static IDataView Footwear3(MLContext ml, IDataView data) =>
        ml.Data.FilterByCustomPredicate<ClassRow>(data, r => !Footwear.Contains(r.Class));

    private sealed class ClassRow
    {
        public string Class { get; set; } = string.Empty;
    }
}
