using SkiaSharp;

namespace Bn.MLNet.Tests.Samples;

/// <summary>Checks on the PNG plots an experiment writes.</summary>
internal static class ExperimentPlots
{
    /// <summary>Asserts that <paramref name="dir"/> holds exactly <paramref name="count"/> PNGs, each decodable and at least 600×300.</summary>
    public static void AssertDecodable(string dir, int count)
    {
        var pngs = Directory.GetFiles(dir, "*.png");
        Assert.Equal(count, pngs.Length);
        foreach (string png in pngs)
        {
            using var bitmap = SKBitmap.Decode(png);
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width >= 600 && bitmap.Height >= 300, $"{png} is {bitmap.Width}×{bitmap.Height}");
        }
    }
}
