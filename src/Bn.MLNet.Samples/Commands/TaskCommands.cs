using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>binary</c> and <c>regression</c>: the BN network for ML.NET's other tasks on real data, against what an ML.NET
/// user would pick instead (FastTree, LightGBM, SDCA) on the same split. <c>binary</c>: Fashion-MNIST, shirts against
/// the rest (10 % positives; the hardest class, confused with T-shirts, pullovers and coats; footwear against the rest
/// is too easy to tell the trainers apart: all of them reach an AUC of 1.000), the BN CNN on the images. <c>regression</c>: scikit-learn's diabetes data
/// (datasets/diabetes: 10 raw features of mixed scales, 353 training and 89 test rows), the BN MLP on the raw columns
/// (standardized per feature inside the network). One trainer per run (<c>--trainer</c>), so that a script can measure
/// each one's peak memory as a whole process (<c>scripts/compare-tasks.sh</c>).
/// </summary>
internal static class TaskCommands
{
    private const string PositiveClass = "Shirt";
    private static readonly string[] Trainers = ["bncnn", "fasttree", "lightgbm", "sdca"];

    public static Command CreateBinary() => Create("binary", "Binary classification on Fashion-MNIST (shirts against the rest): the BN CNN against FastTree, LightGBM and SDCA.", RunBinary, defaultEpochs: 3);

    public static Command CreateRegression() => Create("regression", "Regression on scikit-learn's diabetes data (raw features): the BN MLP against FastTree, LightGBM and SDCA.", RunRegression, defaultEpochs: 50);

    private static Command Create(string name, string description, Func<MLContext, string, Settings, Dictionary<string, double>> run, int defaultEpochs)
    {
        var trainer = new Option<string>("--trainer") { Description = $"One of {string.Join(", ", Trainers)}.", DefaultValueFactory = _ => "bncnn" };
        trainer.AcceptOnlyFromAmong(Trainers);
        var epochs = new Option<int>("--epochs") { Description = "Epochs of the BN network.", DefaultValueFactory = _ => defaultEpochs };
        var hidden = new Option<string?>("--hidden") { Description = "Hidden widths of the BN network, comma-separated, or 'none' (default: the command's).", HelpName = "WIDTHS" };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate of the BN network (default: the command's).", HelpName = "RATE" };
        var metricsOut = new Option<string?>("--metrics-out") { Description = "Write the metrics and the training seconds as JSON.", HelpName = "FILE" };
        var onnx = new Option<string?>("--onnx") { Description = "With --trainer bncnn: also write the trained network as ONNX (the ONNX sample scores it).", HelpName = "FILE" };
        var command = new Command(name, description) { trainer, epochs, hidden, lr, metricsOut, onnx };
        command.SetAction(p =>
        {
            var ml = new MLContext(seed: 1);
            var settings = new Settings(p.GetValue(epochs), p.GetValue(hidden) is string h ? ArchitectureSpec.ParseHidden(h) : null, p.GetValue(lr), p.GetValue(onnx));
            Dictionary<string, double> metrics = run(ml, p.GetValue(trainer)!, settings);
            var table = new Table().Title($"{name}: {p.GetValue(trainer)}").AddColumn("metric").AddColumn("value");
            foreach (var (key, value) in metrics)
                table.AddRow(key, value.ToString("0.0000", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            if (p.GetValue(metricsOut) is string path)
                File.WriteAllText(path, JsonSerializer.Serialize(metrics));
            return 0;
        });
        return command;
    }

    /// <summary>The BN network's settings from the command line (null: the command's default).</summary>
    private sealed record Settings(int Epochs, int[]? Hidden, double? LearningRate, string? OnnxPath)
    {
        public BatchNormCnnOptions Apply(BatchNormCnnOptions o)
        {
            o.Epochs = Epochs;
            if (Hidden is not null)
                o.HiddenLayers = Hidden;
            if (LearningRate is double rate)
                o.LearningRate = rate;
            return o;
        }
    }

    private static Dictionary<string, double> RunBinary(MLContext ml, string trainer, Settings settings)
    {
        IDataView train = ShirtView(ml, FashionMnistSplit.Train), test = ShirtView(ml, FashionMnistSplit.Test);
        IEstimator<ITransformer> estimator = trainer switch
        {
            "bncnn" => ml.BinaryClassification.Trainers.BatchNormCnn(settings.Apply(new BatchNormCnnOptions { Seed = 1 })),
            "fasttree" => ml.BinaryClassification.Trainers.FastTree(),
            "lightgbm" => ml.BinaryClassification.Trainers.LightGbm(),
            _ => ml.Transforms.NormalizeMinMax("Features").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()),
        };
        var (model, seconds) = Timed(() => estimator.Fit(train));
        var m = ml.BinaryClassification.Evaluate(model.Transform(test));
        Export(model, settings);
        return new() { ["auc"] = m.AreaUnderRocCurve, ["accuracy"] = m.Accuracy, ["f1"] = m.F1Score, ["logLoss"] = m.LogLoss, ["trainSeconds"] = seconds };
    }

    private static Dictionary<string, double> RunRegression(MLContext ml, string trainer, Settings settings)
    {
        var (train, test) = Diabetes.Split(ml);
        IEstimator<ITransformer> estimator = trainer switch
        {
            "bncnn" => ml.Regression.Trainers.BatchNormCnn(settings.Apply(TabularOptions())),
            "fasttree" => ml.Regression.Trainers.FastTree(),
            "lightgbm" => ml.Regression.Trainers.LightGbm(),
            _ => ml.Transforms.NormalizeMeanVariance("Features").Append(ml.Regression.Trainers.Sdca()),
        };
        var (model, seconds) = Timed(() => estimator.Fit(train));
        var m = ml.Regression.Evaluate(model.Transform(test));
        Export(model, settings);
        return new() { ["rmse"] = m.RootMeanSquaredError, ["mae"] = m.MeanAbsoluteError, ["r2"] = m.RSquared, ["trainSeconds"] = seconds };
    }

    /// <summary>
    /// The paper's kind of network for vectors: fully-connected hidden layers with Batch Normalization, on the raw
    /// features declared 1×1×10 (tabular: standardized per feature inside the network).
    /// </summary>
    internal static BatchNormCnnOptions TabularOptions() => new()
    {
        ImageChannels = 1,
        ImageHeight = 1,
        ImageWidth = Diabetes.FeatureCount,
        ConvStages = [],
        HiddenLayers = [16],
        BatchSize = 32,
        LearningRate = 0.01,
        WeightDecay = 1e-3,
        Seed = 1,
    };

    /// <summary>Fashion-MNIST with a Boolean label: true for shirts.</summary>
    private static IDataView ShirtView(MLContext ml, FashionMnistSplit split)
    {
        IDataView text = SampleData.Load(ml, split, null, null);
        var mapped = ml.Transforms.CustomMapping<ClassRow, BooleanLabel>((row, label) => label.Label = row.Class == PositiveClass, contractName: null);
        return mapped.Fit(text).Transform(text);
    }

    /// <summary>Writes the BN network as ONNX when asked, then disposes the model.</summary>
    private static void Export(ITransformer model, Settings settings)
    {
        if (settings.OnnxPath is string path && model is BatchNormCnnTransformer cnn)
        {
            cnn.SaveAsOnnx(path);
            AnsiConsole.MarkupLine($"ONNX model written to {Markup.Escape(Path.GetFullPath(path))}");
        }

        (model as IDisposable)?.Dispose();
    }

    private static (ITransformer Model, double Seconds) Timed(Func<ITransformer> fit)
    {
        var clock = Stopwatch.StartNew();
        ITransformer model = fit();
        return (model, clock.Elapsed.TotalSeconds);
    }

    private sealed class ClassRow
    {
        public string Class { get; set; } = string.Empty;
    }

    private sealed class BooleanLabel
    {
        public bool Label { get; set; }
    }
}
