using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Bn.MLNet.Samples.Reporting;

/// <summary>Writes titled line plots with labelled axes and a legend as PNG files (OxyPlot on SkiaSharp).</summary>
public static class LinePlot
{
    /// <summary>Renders <paramref name="curves"/> to a PNG file at <paramref name="path"/>.</summary>
    /// <param name="path">Output file; its folder is created if needed.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="xLabel">Horizontal axis title.</param>
    /// <param name="yLabel">Vertical axis title.</param>
    /// <param name="curves">The curves; empty curves are skipped.</param>
    /// <param name="logX">Use a base-2 logarithmic horizontal axis (for batch sizes).</param>
    /// <param name="yMin">Optional lower bound of the vertical axis.</param>
    /// <param name="yMax">Optional upper bound of the vertical axis.</param>
    /// <param name="legendOutside">Put the legend to the right of the plot area instead of inside its bottom-right corner.</param>
    public static void Save(string path, string title, string xLabel, string yLabel, IEnumerable<Curve> curves, bool logX = false, double? yMin = null, double? yMax = null, bool legendOutside = false)
    {
        var model = new PlotModel { Title = title, Background = OxyColors.White };
        Axis x = logX
            ? new LogarithmicAxis { Position = AxisPosition.Bottom, Title = xLabel, Base = 2 }
            : new LinearAxis { Position = AxisPosition.Bottom, Title = xLabel };
        x.MajorGridlineStyle = LineStyle.Dot;
        model.Axes.Add(x);
        var y = new LinearAxis { Position = AxisPosition.Left, Title = yLabel, MajorGridlineStyle = LineStyle.Dot };
        if (yMin is double lo)
        {
            y.Minimum = lo;
        }

        if (yMax is double hi)
        {
            y.Maximum = hi;
        }

        model.Axes.Add(y);
        model.Legends.Add(legendOutside
            ? new Legend { LegendPosition = LegendPosition.RightTop, LegendPlacement = LegendPlacement.Outside }
            : new Legend { LegendPosition = LegendPosition.RightBottom, LegendPlacement = LegendPlacement.Inside, LegendBackground = OxyColor.FromAColor(200, OxyColors.White) });

        foreach (var curve in curves)
        {
            if (curve.Points.Count == 0)
            {
                continue;
            }

            var series = new LineSeries { Title = curve.Name, MarkerType = curve.Points.Count <= 12 ? MarkerType.Circle : MarkerType.None };
            foreach (var (px, py) in curve.Points)
            {
                if (double.IsFinite(px) && double.IsFinite(py))
                {
                    series.Points.Add(new DataPoint(px, py));
                }
            }

            model.Series.Add(series);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = File.Create(path);
        new OxyPlot.SkiaSharp.PngExporter { Width = 900, Height = 540 }.Export(model, stream);
    }
}
