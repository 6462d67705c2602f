using System.CommandLine;
using System.Diagnostics;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Microsoft.ML;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>bench</c>: a short side-by-side speed summary of the ratios that the BenchmarkDotNet project under bench/ measures
/// properly (median of interleaved repetitions; noisy on a shared machine — use the benchmarks for numbers to quote).
/// </summary>
internal static class BenchCommand
{
    private static readonly Option<int> RepeatsOption = new("--repeats")
    {
        Description = "Interleaved repetitions per measurement; the median is reported.",
        DefaultValueFactory = _ => 7,
    };

    public static Command Create()
    {
        RepeatsOption.AtLeast(1);
        var command = new Command("bench", "Short speed summary: our BatchNorm vs libtorch's, and ML.NET Transform vs raw batched eval.") { RepeatsOption };
        command.SetAction(p => Run(p.GetValue(RepeatsOption)));
        return command;
    }

    public static int Run(int repeats)
    {
        var table = new Table().AddColumn("measurement").AddColumn("ours / baseline (median)").AddColumn("ours ms").AddColumn("baseline ms");
        foreach (long[] shape in new[] { new long[] { 128, 32, 28, 28 }, new long[] { 128, 64, 14, 14 }, new long[] { 512, 128 } })
        {
            using var scope = torch.NewDisposeScope();
            bool is2d = shape.Length == 4;
            nn.Module<Tensor, Tensor> ours = is2d ? new BatchNorm2d(shape[1]) : new BatchNorm1d(shape[1]);
            nn.Module<Tensor, Tensor> native = is2d ? nn.BatchNorm2d(shape[1]) : nn.BatchNorm1d(shape[1]);
            Tensor x = torch.randn(shape).requires_grad_(true);
            Tensor grad = torch.randn(shape);
            var (a, b) = Interleaved(repeats, () => ForwardBackward(ours, x, grad), () => ForwardBackward(native, x, grad));
            table.AddRow($"BatchNorm forward+backward {string.Join('×', shape)} (baseline: libtorch)", $"{a / b:0.00}×", $"{a:0.0}", $"{b:0.0}");
        }

        // ML.NET Transform vs the same network's raw batched eval over prepared tensors.
        var ml = new MLContext(1);
        IDataView data = FashionMnist.LoadTest(ml, limit: 2000);
        var estimator = ml.Transforms.BatchNormCnn(new BatchNormCnnOptions { MaxSteps = 2, Seed = 1 });
        using BatchNormCnnTransformer model = estimator.Fit(FashionMnist.LoadTrain(ml, limit: 512));
        IdxLabeledImages raw = FashionMnist.Read(null, FashionMnistSplit.Test, 2000);
        float[] pixels = raw.Images.Pixels.Select(v => (float)v).ToArray();
        BatchNormCnnNetwork network = model.ScoringNetwork;
        int batch = model.InferenceBatchSize;
        var (t, r) = Interleaved(repeats,
            () =>
            {
                IDataView scored = model.Transform(data);
                using var cursor = scored.GetRowCursor(scored.Schema.Where(c => c.Name == "Score"));
                var getter = cursor.GetGetter<Microsoft.ML.Data.VBuffer<float>>(scored.Schema["Score"]);
                var buffer = default(Microsoft.ML.Data.VBuffer<float>);
                while (cursor.MoveNext())
                {
                    getter(ref buffer);
                }
            },
            () =>
            {
                using var noGrad = torch.no_grad();
                for (int start = 0; start < raw.Count; start += batch)
                {
                    int n = Math.Min(batch, raw.Count - start);
                    using var scope = torch.NewDisposeScope();
                    Tensor input = torch.tensor(pixels.AsSpan(start * 784, n * 784).ToArray(), new long[] { n, 784 });
                    network.call(input).softmax(1);
                }
            });
        table.AddRow($"Transform 2,000 rows (baseline: raw batched eval, batch {batch})", $"{t / r:0.00}×", $"{t:0.0}", $"{r:0.0}");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]A quick, noisy summary. Quote the BenchmarkDotNet results: dotnet run -c Release --project bench/Bn.MLNet.Benchmarks -- --filter '*'[/]");
        return 0;
    }

    private static void ForwardBackward(nn.Module<Tensor, Tensor> module, Tensor x, Tensor grad)
    {
        using var scope = torch.NewDisposeScope();
        x.grad?.zero_();
        Tensor y = module.call(x);
        y.backward(new[] { grad });
    }

    /// <summary>Runs both actions alternately (after one warm-up each) and returns their median times in milliseconds.</summary>
    private static (double Ours, double Baseline) Interleaved(int repeats, Action ours, Action baseline)
    {
        ours();
        baseline();
        var a = new List<double>();
        var b = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            ours();
            a.Add(clock.Elapsed.TotalMilliseconds);
            clock.Restart();
            baseline();
            b.Add(clock.Elapsed.TotalMilliseconds);
        }

        a.Sort();
        b.Sort();
        return (a[a.Count / 2], b[b.Count / 2]);
    }
}
