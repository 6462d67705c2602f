using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// Entry point of the test assembly when run as a program (<c>dotnet exec Bn.MLNet.Tests.dll ...</c>), so tests can
/// load saved models in a fresh process without a helper project. The test host never calls it.
/// </summary>
public static class ChildProcessProgram
{
    /// <summary>
    /// Commands: <c>score &lt;model.zip&gt; &lt;rows.bin&gt;</c>, <c>probe &lt;model.zip&gt;</c>, <c>bare &lt;model.zip&gt;</c>,
    /// <c>train-checkpoints &lt;folder&gt;</c>.
    /// </summary>
    public static int Main(string[] args)
    {
        try
        {
            switch (args)
            {
                case ["probe", var path]:
                {
                    ProbeTransformer.EnsureRegistered();
                    var model = new MLContext(seed: 0).Model.Load(path, out _);
                    var probe = (ProbeTransformer)model;
                    Console.WriteLine(string.Join(" ", probe.Values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + " " + probe.Side);
                    return 0;
                }
                case ["score", var path, var dataPath]:
                {
                    // A scoring-only app: registers the loader, loads the model in a fresh MLContext, prints scores.
                    var ml = new MLContext(seed: 0);
                    ml.ComponentCatalog.RegisterBatchNormCnn();
                    var model = ml.Model.Load(path, out _);
                    var rows = ReadRows(dataPath);
                    var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
                    foreach (var score in scored.GetColumn<float[]>("Score"))
                        Console.WriteLine(FormatScores(score));
                    return 0;
                }

                case ["score-tabular", var path]:
                {
                    // A scoring-only process: loads a tabular regression model and prints its scores of TaskTests' test rows.
                    var ml = new MLContext(seed: 0);
                    ml.ComponentCatalog.RegisterBatchNormCnn();
                    var model = ml.Model.Load(path, out var schema);
                    var random = new Random(2);
                    var rows = Enumerable.Range(0, 200).Select(_ => new TaskTests.TabularRow
                    {
                        Features = Enumerable.Range(0, 12).Select(j => (float)(random.NextDouble() * Math.Pow(10, (j % 6) - 2))).ToArray(),
                        Label = (float)random.NextDouble(),
                    }).ToList();
                    foreach (float score in model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("Score").Take(3))
                        Console.WriteLine(score.ToString("R", CultureInfo.InvariantCulture));
                    return 0;
                }

                case ["train-checkpoints", var directory]:
                {
                    // The checkpoint job, reporting every step; slowed down so the parent can kill it in mid-epoch.
                    var progress = new ProgressLines(r =>
                    {
                        Console.WriteLine(r.EpochCompleted ? $"epoch {r.Epoch + 1} done" : $"epoch {r.Epoch + 1} step {r.Step % 15}");
                        Console.Out.Flush();
                        Thread.Sleep(50);
                    });
                    Training.CheckpointJob.Run(directory, progress);
                    return 0;
                }

                case ["bare", var path]:
                {
                    // Touches nothing of Bn.MLNet before loading.
                    var model = new MLContext(seed: 0).Model.Load(path, out _);
                    Console.WriteLine(model.GetType().FullName);
                    return 0;
                }
                default:
                    Console.Error.WriteLine("usage: score <model.zip> <rows.bin> | probe <model.zip> | bare <model.zip>");
                    return 2;
            }
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(e);
            return 1;
        }
    }

    private sealed class ProgressLines(Action<Bn.MLNet.Training.TrainingProgress> action) : IProgress<Bn.MLNet.Training.TrainingProgress>
    {
        public void Report(Bn.MLNet.Training.TrainingProgress value) => action(value);
    }

    /// <summary>Writes rows for the <c>score</c> command: int32 count, then per row the label and 784 floats.</summary>
    internal static void WriteRows(string path, IReadOnlyList<ImageRow> rows)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write(rows.Count);
        foreach (var r in rows)
        {
            w.Write(r.Label);
            w.Write(r.Features.Length);
            foreach (var f in r.Features)
                w.Write(f);
        }
    }

    private static List<ImageRow> ReadRows(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        int n = r.ReadInt32();
        var rows = new List<ImageRow>(n);
        for (int i = 0; i < n; i++)
        {
            var label = r.ReadString();
            var features = new float[r.ReadInt32()];
            for (int j = 0; j < features.Length; j++)
                features[j] = r.ReadSingle();
            rows.Add(new ImageRow { Label = label, Features = features });
        }

        return rows;
    }

    /// <summary>Exact text form of a score vector (bit patterns), for comparing across processes.</summary>
    internal static string FormatScores(float[] score) =>
        string.Join(" ", score.Select(v => BitConverter.SingleToInt32Bits(v).ToString("X8", CultureInfo.InvariantCulture)));

    /// <summary>Runs this assembly as a child process and returns (exit code, stdout, stderr).</summary>
    internal static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var dll = typeof(ChildProcessProgram).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("child process did not finish in 2 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
