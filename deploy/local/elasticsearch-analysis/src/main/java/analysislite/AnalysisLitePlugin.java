package analysislite;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.PreBuiltAnalyzerProviderFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.indices.analysis.PreBuiltCacheFactory.CachingStrategy;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

import java.util.List;
import java.util.Map;

/**
 * Restores, on an Elasticsearch node without the analysis-common module, the analysis components a
 * product search needs, under the names and with the settings analysis-common gives them, so that
 * index settings written against this plugin work unchanged on a full Elasticsearch distribution.
 *
 * <p>Token filters: {@code asciifolding}, {@code porter_stem}, {@code kstem}, {@code stemmer} and
 * {@code snowball}. Analyzer: {@code english}. {@code lowercase} and {@code stop} are part of the
 * Elasticsearch server itself and are therefore not registered here.
 */
public class AnalysisLitePlugin extends Plugin implements AnalysisPlugin {

    /** Creates the plugin; Elasticsearch calls this when it loads the plugin. */
    public AnalysisLitePlugin() {}

    /** The token filters that index settings can configure by {@code type}. */
    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "asciifolding", AsciiFoldingTokenFilterFactory::new,
            "porter_stem", (indexSettings, env, name, settings) -> new SimpleTokenFilterFactory(name, settings, PorterStemFilter::new),
            "kstem", (indexSettings, env, name, settings) -> new SimpleTokenFilterFactory(name, settings, KStemFilter::new),
            "stemmer", StemmerTokenFilterFactory::new,
            "snowball", SnowballTokenFilterFactory::new
        );
    }

    /**
     * The same token filters with their default settings, usable by name alone, e.g.
     * {@code "filter": ["lowercase", "asciifolding", "porter_stem"]}.
     */
    @Override
    public List<PreConfiguredTokenFilter> getPreConfiguredTokenFilters() {
        return List.of(
            // true: also applied to the terms of multi-term queries (prefix, wildcard, fuzzy) and in normalizers.
            PreConfiguredTokenFilter.singleton("asciifolding", true, ASCIIFoldingFilter::new),
            PreConfiguredTokenFilter.singleton("porter_stem", false, PorterStemFilter::new),
            PreConfiguredTokenFilter.singleton("kstem", false, KStemFilter::new),
            PreConfiguredTokenFilter.singleton("stemmer", false, PorterStemFilter::new),
            PreConfiguredTokenFilter.singleton("snowball", false, tokenStream -> new SnowballFilter(tokenStream, "English"))
        );
    }

    /** The analyzers that index settings can configure by {@code type}. */
    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Map.of("english", EnglishAnalyzerProvider::new);
    }

    /** The {@code english} analyzer with its default settings, usable by name alone in mappings and {@code _analyze}. */
    @Override
    public List<PreBuiltAnalyzerProviderFactory> getPreBuiltAnalyzerProviderFactories() {
        return List.of(new PreBuiltAnalyzerProviderFactory("english", CachingStrategy.LUCENE, EnglishAnalyzer::new));
    }
}
