using System.Globalization;
using System.IO.Compression;

namespace Bn.MLNet.Samples.Onnx;

/// <summary>The diabetes data's test rows (every fifth row, index % 5 == 0, as the samples' `regression` command splits): 10 raw features and the target.</summary>
internal static class DiabetesTestRows
{
    public static (float[][] Rows, float[] Targets) Read(string folder)
    {
        float[][] features = Lines(Path.Combine(folder, "diabetes_data_raw.csv.gz")).Select(Numbers).ToArray();
        float[] targets = Lines(Path.Combine(folder, "diabetes_target.csv.gz")).Select(l => Numbers(l)[0]).ToArray();
        if (features.Length != targets.Length)
            throw new InvalidDataException($"'{folder}' holds {features.Length} feature rows and {targets.Length} targets.");
        int[] test = Enumerable.Range(0, features.Length).Where(i => i % 5 == 0).ToArray();
        return (test.Select(i => features[i]).ToArray(), test.Select(i => targets[i]).ToArray());
    }

    private static IEnumerable<string> Lines(string path)
    {
        using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        while (reader.ReadLine() is { } line)
        {
            if (line.Trim().Length > 0)
                yield return line;
        }
    }

    private static float[] Numbers(string line) =>
        line.Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(v => float.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
}
