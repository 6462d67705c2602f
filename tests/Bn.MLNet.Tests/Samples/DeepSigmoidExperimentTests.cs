using System.Globalization;
using Bn.MLNet.Samples.Commands;
using Bn.MLNet.Samples.Experiments;

namespace Bn.MLNet.Tests.Samples;

/// <summary>The <c>experiment deep-sigmoid</c> command: it parses, and its quick budget writes a complete report.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class DeepSigmoidExperimentTests
{
    [Fact]
    public void CommandLineParses()
    {
        Assert.Empty(Cli.CreateRootCommand().Parse(new[] { "experiment", "deep-sigmoid", "--quick", "--out", "some/dir" }).Errors);
    }

    [Fact]
    public void QuickRunWritesReportCsvAndPngFilesForEveryDepthRateAndNormalization()
    {
        string dir = Directory.CreateTempSubdirectory("bnmlnet-deep-sigmoid-").FullName;
        try
        {
            Assert.Equal(0, ExperimentCommand.Run("deep-sigmoid", quick: true, dir, null, threads: null, seed: 1));
            string report = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains("| claim (paper) | measured here | verdict |", report);
            Assert.Contains("Without BN, a deep sigmoid network does not train", report);

            var rows = ReadSummary(Path.Combine(dir, "deep_sigmoid_summary.csv"));
            Assert.Equal(DeepSigmoidExperiment.Depths.Length * DeepSigmoidExperiment.Multipliers.Length * 2, rows.Count);
            foreach (int depth in DeepSigmoidExperiment.Depths)
            {
                Assert.Contains(rows, r => r["depth"] == depth.ToString(CultureInfo.InvariantCulture) && r["normalization"] == "Batch" && r["lr_multiplier"] == "5");
                Assert.Contains(rows, r => r["depth"] == depth.ToString(CultureInfo.InvariantCulture) && r["normalization"] == "None" && r["lr_multiplier"] == "1");
            }

            // Even at the quick budget the deepest network trains with BN and stays near chance without it.
            double Best(string norm) => double.Parse(rows.First(r => r["depth"] == "12" && r["normalization"] == norm && r["lr_multiplier"] == "5")["best_test_accuracy"], CultureInfo.InvariantCulture);
            Assert.True(Best("Batch") > Best("None") + 0.2, $"depth 12 at x5: BN {Best("Batch")}, no BN {Best("None")}");

            string[] percentiles = File.ReadAllLines(Path.Combine(dir, "deep_sigmoid_last_sigmoid_input.csv"));
            Assert.Equal("run,step,layer,p15,p50,p85", percentiles[0]);
            Assert.True(percentiles.Length > rows.Count * 2);
            Assert.Contains("BN, depth 12, x5", File.ReadAllText(Path.Combine(dir, "deep_sigmoid_test_accuracy.csv")));

            ExperimentPlots.AssertDecodable(dir, 9);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static List<Dictionary<string, string>> ReadSummary(string path)
    {
        string[] lines = File.ReadAllLines(path);
        string[] header = lines[0].Split(',');
        Assert.Contains("saturated_fraction", header);
        return lines.Skip(1).Select(l => l.Split(','))
            .Select(cells => header.Zip(cells).ToDictionary(p => p.First, p => p.Second)).ToList();
    }
}
