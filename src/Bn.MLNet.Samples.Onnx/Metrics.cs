using System.Globalization;

namespace Bn.MLNet.Samples.Onnx;

/// <summary>Each task's metrics of scored rows against their true labels.</summary>
internal static class Metrics
{
    /// <summary>The positive class of the samples' `binary` command.</summary>
    public const string BinaryPositiveClass = "Shirt";

    public static string Describe(ExportedModel model, float[][] scores, float[] truth) => model.Task switch
    {
        "BinaryClassification" => string.Create(CultureInfo.InvariantCulture,
            $"accuracy {scores.Zip(truth).Count(p => (p.First[0] > 0) == (p.Second > 0.5f)) / (double)scores.Length:0.0000}, AUC {Auc(scores.Select(s => s[0]).ToArray(), truth):0.0000} ({BinaryPositiveClass} against the rest)"),
        "Regression" => Regression(scores.Select(s => s[0]).ToArray(), truth),
        _ => string.Create(CultureInfo.InvariantCulture,
            $"accuracy {scores.Zip(truth).Count(p => Array.IndexOf(p.First, p.First.Max()) == (int)p.Second) / (double)scores.Length:0.0000}"),
    };

    private static string Regression(float[] predictions, float[] truth)
    {
        double mean = truth.Average();
        double sse = predictions.Zip(truth).Sum(p => Math.Pow(p.First - p.Second, 2));
        double sst = truth.Sum(t => Math.Pow(t - mean, 2));
        return string.Create(CultureInfo.InvariantCulture, $"RMSE {Math.Sqrt(sse / truth.Length):0.00}, R² {1 - (sse / sst):0.0000}");
    }

    /// <summary>The area under the ROC curve: the chance that a random positive scores above a random negative (ties count ½).</summary>
    private static double Auc(float[] scores, float[] truth)
    {
        var ranked = scores.Select((s, i) => (Score: s, Positive: truth[i] > 0.5f)).OrderBy(p => p.Score).ToArray();
        double rankSum = 0;
        for (int i = 0; i < ranked.Length;)
        {
            int j = i;
            while (j < ranked.Length && ranked[j].Score == ranked[i].Score)
                j++;
            double averageRank = (i + j + 1) / 2.0;
            rankSum += averageRank * ranked[i..j].Count(p => p.Positive);
            i = j;
        }

        long positives = ranked.LongCount(p => p.Positive), negatives = ranked.Length - positives;
        return (rankSum - (positives * (positives + 1) / 2.0)) / (positives * (double)negatives);
    }
}
