using System.Globalization;
using Bn.MLNet.Networks;

namespace Bn.MLNet.Samples.Commands;

/// <summary>Parses the compact architecture strings of the command line.</summary>
internal static class ArchitectureSpec
{
    /// <summary>
    /// "32x2,64x2" → stages of 32 channels ×2 convs and 64 ×2, each ending with 2×2 max-pooling; a stage written
    /// "128x1:nopool" has no pooling; "none" (or empty) means no convolution.
    /// </summary>
    public static List<ConvStage> ParseStages(string text)
    {
        var stages = new List<ConvStage>();
        if (string.IsNullOrWhiteSpace(text) || text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            return stages;
        }

        foreach (string raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string part = raw;
            bool pool = true;
            if (part.EndsWith(":nopool", StringComparison.OrdinalIgnoreCase))
            {
                pool = false;
                part = part[..^":nopool".Length];
            }

            string[] cr = part.Split('x', 'X');
            if (cr.Length is < 1 or > 2
                || !int.TryParse(cr[0], NumberStyles.None, CultureInfo.InvariantCulture, out int channels)
                || (cr.Length == 2 && !int.TryParse(cr[1], NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                throw new FormatException($"Convolution stage '{raw}' is not CHANNELS[xREPEATS][:nopool], e.g. 32x2.");
            }

            int repeats = cr.Length == 2 ? int.Parse(cr[1], CultureInfo.InvariantCulture) : 1;
            stages.Add(new ConvStage(channels, repeats, pool));
        }

        return stages;
    }

    /// <summary>"256" or "100,100,100"; "none" (or empty) means no hidden layer.</summary>
    public static int[] ParseHidden(string text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            return Array.Empty<int>();
        }

        return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int v)
                ? v
                : throw new FormatException($"Hidden layer width '{p}' is not a whole number."))
            .ToArray();
    }

    /// <summary>The inverse of the parsers, for display.</summary>
    public static string Format(NetworkArchitecture a) =>
        $"conv {FormatStages(a.ConvStages)} | hidden {FormatHidden(a.HiddenLayers)} | {a.Normalization} | {a.Activation} | dropout {a.Dropout.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The inverse of <see cref="ParseStages"/>: "32x2,64x2", or "none".</summary>
    public static string FormatStages(IReadOnlyCollection<ConvStage> stages) => stages.Count == 0
        ? "none"
        : string.Join(",", stages.Select(s => $"{s.Channels}x{s.Repeats}{(s.MaxPool ? string.Empty : ":nopool")}"));

    /// <summary>The inverse of <see cref="ParseHidden"/>: "256", or "none".</summary>
    public static string FormatHidden(int[] widths) => widths.Length == 0 ? "none" : string.Join(",", widths);
}
